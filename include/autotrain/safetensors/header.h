// The safetensors header (spec §6): parsing and strict validation of the JSON that describes
// where each tensor's bytes lie. Works on bytes only, so the fuzzer and the tools that never
// touch LibTorch can use it.
#pragma once

#include <cstdint>
#include <map>
#include <unordered_map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "autotrain/safetensors/dtype.h"

namespace autotrain::safetensors {

// Every problem with a file: the message names the file, the tensor when there is one, and
// what a valid file would have.
class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The reference implementation refuses headers larger than this; so do we, before allocating.
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // data_offsets, relative to the start of the byte buffer
  uint64_t end = 0;

  uint64_t nbytes() const { return end - begin; }
  int64_t numel() const;
};

struct Header {
  std::map<std::string, std::string> metadata;  // __metadata__, empty when absent
  std::vector<TensorInfo> tensors;              // sorted by offset (file order)

  // nullptr when there is no tensor of that name.
  const TensorInfo* find(std::string_view name) const;

  // Name -> position in `tensors`, built by parse_header: loaders look every tensor up by name,
  // and a linear find made a header of many entries quadratic (40k entries: 40 s). A Header
  // assembled by hand (index empty, or out of step with `tensors`) is searched linearly.
  std::unordered_map<std::string, size_t> index;
};

// Parses `json` (the header bytes, possibly right-padded with spaces) and checks it against a
// byte buffer of `buffer_size` bytes: valid UTF-8 JSON object, `__metadata__` of strings, known
// dtype strings, non-negative shapes whose size matches the byte span, offsets contiguous from 0
// without holes or overlaps, ending exactly at `buffer_size`, no duplicate names.
// `where` names the file in messages. Throws SafetensorsError.
Header parse_header(std::string_view json, uint64_t buffer_size, std::string_view where);

// Byte size of `numel` elements of `d`; throws SafetensorsError (naming `where`/`tensor`) when it
// overflows or does not fill whole bytes (sub-byte types).
uint64_t byte_size(Dtype d, const std::vector<int64_t>& shape, std::string_view where, std::string_view tensor);

}  // namespace autotrain::safetensors
