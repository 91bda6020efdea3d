// Writing safetensors files with the reference layout (spec §6), so that a file we write is
// byte-identical to the one the Python package writes for the same tensors: tensors sorted by
// dtype (most aligned first) then name, compact header JSON with `__metadata__` first, padded
// with spaces to a multiple of 8. Files are written atomically (temporary name, fsync, rename).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "autotrain/safetensors/header.h"

namespace autotrain::safetensors {

struct TensorData {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;  // little-endian, row-major; size must match dtype × shape
};

using Metadata = std::map<std::string, std::string>;
inline const Metadata kPytorchMetadata{{"format", "pt"}};

// The layout the writer uses: `tensors` sorted and given offsets. Throws SafetensorsError on
// duplicate or reserved names and on data whose size does not match dtype × shape.
std::vector<TensorInfo> plan_layout(const std::vector<TensorData>& tensors, std::string_view where);

// The header bytes (without the 8-byte length), padded to a multiple of 8.
std::string serialize_header(const std::vector<TensorInfo>& layout, const Metadata& metadata);

// Writes `tensors` to `path` atomically. Throws SafetensorsError.
void write_file(const std::filesystem::path& path, const std::vector<TensorData>& tensors,
                const Metadata& metadata = kPytorchMetadata);

// Sharded checkpoints: `model.safetensors.index.json` as transformers writes it (sorted keys,
// indent 2, trailing newline).
struct ShardIndex {
  uint64_t total_parameters = 0;  // element count of all tensors (transformers >= 5 writes it)
  uint64_t total_size = 0;
  std::map<std::string, std::string> weight_map;  // tensor name -> shard file name
};
std::string serialize_index(const ShardIndex& index);

// Splits `tensors` (in the order given) into shards of at most `max_shard_bytes` of data each (a
// larger tensor gets a shard of its own), writes `model-0000i-of-0000K.safetensors` into `dir`
// and, when there is more than one shard, `model.safetensors.index.json`; a single shard is
// written as `model.safetensors`. Returns the index.
ShardIndex write_sharded(const std::filesystem::path& dir, const std::vector<TensorData>& tensors,
                         uint64_t max_shard_bytes, const Metadata& metadata = kPytorchMetadata);

}  // namespace autotrain::safetensors
