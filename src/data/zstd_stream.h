// Internal to the data module: zstd decoding that grows its output as frames yield it, for
// inputs whose decompressed size cannot be trusted before decoding (data files, Parquet pages
// and Arrow buffers without a size record). One loop for the three readers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace autotrain::data {

enum class ZstdResult { kDone, kPastLimit, kDamaged, kCutShort };

// Appends every frame of `in` (several, skippable ones too) to `out`, stopping before `out`
// would pass `limit` bytes. On kDamaged, `error` (when given) holds zstd's reason.
ZstdResult zstd_decompress(std::string_view in, uint64_t limit, std::string& out, std::string* error = nullptr);

}  // namespace autotrain::data
