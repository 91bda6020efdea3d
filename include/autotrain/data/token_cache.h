// The token cache's block files: `<split>.safetensors` holding int32 tensors `input_ids` and
// `labels` of shape [blocks, block_size], readable by the Python `safetensors` package as well.
// Reading maps the file; nothing is copied. No LibTorch.
#pragma once

#include <filesystem>

#include "autotrain/data/blocks.h"
#include "autotrain/data/prepare.h"

namespace autotrain::data {

// Written atomically (temporary name, fsync, rename).
void write_block_file(const std::filesystem::path& path, const Blocks& blocks);

// Maps a block file; checks both tensors exist, are I32, 2-D and of the same shape, and (when
// given) that the block size is `expect_block_size`. Throws DataError.
TokenBlocks map_block_file(const std::filesystem::path& path, int64_t expect_block_size = 0);

}  // namespace autotrain::data
