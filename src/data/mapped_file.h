// Internal to the data module: a data file mapped read-only (Parquet and Arrow readers), and the
// memory the texts of one file may take.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace autotrain::safetensors {
class MappedFile;
}

namespace autotrain::data {

// The safetensors module's mapping, its errors as DataError (a data file is a `data` input).
class MappedFile {
 public:
  // Maps `path`; throws DataError naming it (missing, unreadable, not a regular file). An empty
  // file maps to an empty view.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::string_view bytes() const;

 private:
  std::unique_ptr<safetensors::MappedFile> file_;
};

// What the texts of one columnar file may take in memory, charged before they are decoded: a few
// KB of zstd can claim gigabytes, and runs of nulls cost nothing to store.
class TextBudget {
 public:
  explicit TextBudget(uint64_t limit) : left_(limit), limit_(limit) {}
  // Throws DataError naming `where` when `bytes` do not fit any more.
  void charge(uint64_t bytes, const std::string& where);
  void refund(uint64_t bytes) { left_ += bytes; }

 private:
  uint64_t left_, limit_;
};

// The memory this process may use: the machine's physical memory, or its cgroup's limit when
// lower (16 GiB when the system does not say).
uint64_t physical_memory_bytes();

}  // namespace autotrain::data
