// Reading safetensors files: the whole file is memory-mapped read-only and tensors are byte
// spans into the mapping, so nothing is copied until a caller converts a tensor.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string_view>

#include "autotrain/safetensors/header.h"

namespace autotrain::safetensors {

// A read-only private mapping of a whole file. Shared: views into it (zero-copy tensors) hold a
// shared_ptr, so the mapping lives as long as any of them.
class MappedFile {
 public:
  // Throws SafetensorsError naming the path and the system's reason.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  // Tells the kernel that [offset, offset+n) will not be read again soon, so that its pages can
  // leave the resident set (used while streaming a checkpoint into other memory).
  void release(uint64_t offset, uint64_t n) const;

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

class SafetensorsFile {
 public:
  // Maps and validates `path` (see parse_header). Throws SafetensorsError.
  static SafetensorsFile open(const std::filesystem::path& path);
  // Validates an in-memory file image; `where` names it in messages. The bytes must outlive the
  // returned object (used by the fuzzer and tests).
  static Header parse(std::span<const std::byte> file, std::string_view where);

  const Header& header() const { return header_; }
  const std::filesystem::path& path() const { return mapping_->path(); }
  const std::shared_ptr<const MappedFile>& mapping() const { return mapping_; }
  // Offset of the byte buffer in the file (8 + header length).
  uint64_t data_offset() const { return data_offset_; }

  // The bytes of tensor `t` (which must come from header()). Valid while the mapping lives.
  std::span<const std::byte> data(const TensorInfo& t) const;
  // Throws SafetensorsError naming the file when there is no such tensor.
  const TensorInfo& tensor(std::string_view name) const;

 private:
  std::shared_ptr<const MappedFile> mapping_;
  Header header_;
  uint64_t data_offset_ = 0;
};

}  // namespace autotrain::safetensors
