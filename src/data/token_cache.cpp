// Block files of the token cache (see autotrain/data/token_cache.h).
#include "autotrain/data/token_cache.h"

#include <fmt/format.h>

#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/writer.h"

namespace autotrain::data {

namespace st = autotrain::safetensors;

void write_block_file(const std::filesystem::path& path, const Blocks& blocks) {
  auto bytes = [](const std::vector<int32_t>& v) { return std::as_bytes(std::span<const int32_t>(v)); };
  std::vector<int64_t> shape{blocks.count, blocks.block_size};
  st::Metadata meta{{"format", "pt"}, {"block_size", std::to_string(blocks.block_size)}};
  try {
    st::write_file(path,
                   {{"input_ids", st::Dtype::I32, shape, bytes(blocks.input_ids)},
                    {"labels", st::Dtype::I32, shape, bytes(blocks.labels)}},
                   meta);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("writing the token cache {}: {}", path.string(), e.what()));
  }
}

TokenBlocks map_block_file(const std::filesystem::path& path, int64_t expect_block_size) {
  try {
    auto file = std::make_shared<st::SafetensorsFile>(st::SafetensorsFile::open(path));
    const auto& ids = file->tensor("input_ids");
    const auto& labels = file->tensor("labels");
    for (const auto* t : {&ids, &labels})
      if (t->dtype != st::Dtype::I32 || t->shape.size() != 2 || t->shape != ids.shape)
        throw DataError(fmt::format("{}: {} must be I32 [blocks, block_size] like input_ids", path.string(), t->name));
    if (expect_block_size && ids.shape[1] != expect_block_size)
      throw DataError(fmt::format("{}: blocks of {} tokens, expected {}", path.string(), ids.shape[1],
                                  expect_block_size));
    TokenBlocks b;
    b.count = ids.shape[0];
    b.block_size = ids.shape[1];
    b.input_ids = reinterpret_cast<const int32_t*>(file->data(ids).data());
    b.labels = reinterpret_cast<const int32_t*>(file->data(labels).data());
    b.keepalive = file;  // the SafetensorsFile holds the mapping
    return b;
  } catch (const st::SafetensorsError& e) {
    throw DataError(fmt::format("token cache: {}", e.what()));
  }
}

}  // namespace autotrain::data
