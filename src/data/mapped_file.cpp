#include "mapped_file.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "autotrain/data/error.h"
#include "autotrain/safetensors/file.h"

namespace autotrain::data {

MappedFile::MappedFile(const std::filesystem::path& path) {
  try {
    file_ = std::make_unique<safetensors::MappedFile>(path);
  } catch (const safetensors::SafetensorsError& e) {
    throw DataError(e.what());
  }
}

MappedFile::~MappedFile() = default;

std::string_view MappedFile::bytes() const {
  const auto b = file_->bytes();
  return {reinterpret_cast<const char*>(b.data()), b.size()};
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
