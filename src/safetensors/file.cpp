#include "autotrain/safetensors/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace autotrain::safetensors {

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SafetensorsError(fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw SafetensorsError(fmt::format("cannot stat {}: {}", path.string(), std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw SafetensorsError(fmt::format("{} is not a regular file", path.string()));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {  // mmap refuses length 0; an empty file is reported by the header check
    // Writable but private (copy-on-write): a tensor view written in place changes our copy of a
    // page, never the file, and never faults.
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      throw SafetensorsError(fmt::format("cannot map {}: {}", path.string(), std::strerror(err)));
    }
    data_ = static_cast<const std::byte*>(p);
  }
  ::close(fd);  // the mapping keeps the file open
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

void MappedFile::release(uint64_t offset, uint64_t n) const {
  if (!data_ || offset >= size_) return;
  // madvise works on whole pages: only release pages entirely inside the range.
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t first = (offset + page - 1) / page * page;
  uint64_t last = std::min<uint64_t>(offset + n, size_) / page * page;
  if (last > first) ::madvise(const_cast<std::byte*>(data_) + first, last - first, MADV_DONTNEED);
}

Header SafetensorsFile::parse(std::span<const std::byte> file, std::string_view where) {
  if (file.size() < 8)
    throw SafetensorsError(fmt::format("{}: truncated: {} bytes, but a safetensors file starts with an 8-byte header "
                                       "length",
                                       where, file.size()));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(file[static_cast<size_t>(i)]);  // little-endian
  if (n > kMaxHeaderBytes)
    throw SafetensorsError(fmt::format("{}: header length {} exceeds the limit of {} bytes; the file is corrupt or not "
                                       "a safetensors file",
                                       where, n, kMaxHeaderBytes));
  if (n > file.size() - 8)
    throw SafetensorsError(fmt::format("{}: header length {} runs past the end of the file ({} bytes); the file is "
                                       "truncated or not a safetensors file",
                                       where, n, file.size()));
  std::string_view text(reinterpret_cast<const char*>(file.data()) + 8, static_cast<size_t>(n));
  return parse_header(text, file.size() - 8 - n, where);
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile f;
  f.mapping_ = std::make_shared<const MappedFile>(path);
  f.header_ = parse(f.mapping_->bytes(), path.string());
  f.data_offset_ = f.mapping_->bytes().size() - (f.header_.tensors.empty() ? 0 : f.header_.tensors.back().end);
  return f;
}

std::span<const std::byte> SafetensorsFile::data(const TensorInfo& t) const {
  return mapping_->bytes().subspan(data_offset_ + t.begin, t.nbytes());
}

const TensorInfo& SafetensorsFile::tensor(std::string_view name) const {
  if (const TensorInfo* t = header_.find(name)) return *t;
  throw SafetensorsError(fmt::format("{}: no tensor named '{}'", path().string(), name));
}

}  // namespace autotrain::safetensors
