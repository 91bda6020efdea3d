// Pre-tokenized eval data for tests: a [rows, tokens] id tensor as `eval`'s JSONL rows,
// {"input_ids": [...]} one per line. Header-only: only tests that link LibTorch include it.
#pragma once

#include <string>

#include <ATen/Tensor.h>

namespace autotrain::testing {

inline std::string input_ids_jsonl(const at::Tensor& ids) {
  std::string out;
  for (int64_t r = 0; r < ids.size(0); ++r) {
    out += "{\"input_ids\": [";
    for (int64_t c = 0; c < ids.size(1); ++c) out += (c ? ", " : "") + std::to_string(ids[r][c].item<int64_t>());
    out += "]}\n";
  }
  return out;
}

}  // namespace autotrain::testing
