#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "autotrain/data/error.h"

namespace autotrain::data {

MappedFile::MappedFile(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw DataError(fmt::format("{}: cannot open it ({})", path.string(), std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw DataError(fmt::format("{}: not a regular file", path.string()));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    data_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (data_ == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      data_ = nullptr;
      throw DataError(fmt::format("{}: cannot map it ({})", path.string(), std::strerror(err)));
    }
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

void TextBudget::charge(uint64_t bytes, const std::string& where) {
  if (bytes > left_)
    throw DataError(fmt::format("{}: the text column takes more memory than autotrain allows itself for it ({:.1f} GB, "
                                "this machine's memory); split the dataset into smaller files",
                                where, static_cast<double>(limit_) / 1e9));
  left_ -= bytes;
}

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  uint64_t bytes = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : uint64_t{1} << 34;
  // A container's (cgroup v2) limit is what the process really has: SLURM jobs and Docker run so.
  std::ifstream limit("/sys/fs/cgroup/memory.max");
  uint64_t cap = 0;
  if (limit >> cap && cap > 0) bytes = std::min(bytes, cap);  // "max" (no limit) does not parse
  return bytes;
}

}  // namespace autotrain::data
