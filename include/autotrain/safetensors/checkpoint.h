// Finding the safetensors files of a model folder: one `model.safetensors`, or shards listed by
// `model.safetensors.index.json` (spec §6).
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace autotrain::safetensors {

struct CheckpointFiles {
  std::vector<std::filesystem::path> shards;  // in the order of the index's first mention
  std::map<std::string, size_t> shard_of;     // tensor name -> index into `shards`; empty for one file
  std::filesystem::path index;                // the index file, empty for a single file
};

// Looks in `dir` for model.safetensors.index.json, then model.safetensors. Throws
// SafetensorsError when neither exists (mentioning pickle checkpoints when that is what is there),
// when the index is malformed or names a shard that does not exist or lies outside `dir`.
CheckpointFiles find_checkpoint(const std::filesystem::path& dir);

}  // namespace autotrain::safetensors
