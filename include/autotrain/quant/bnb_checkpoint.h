// 4-bit checkpoints in the layout transformers + bitsandbytes write and read
// (falcon-qlora-spec.md §3.6): per quantized Linear `weight` (packed uint8), `weight.absmax`,
// `weight.quant_map`, optionally `weight.nested_absmax` / `weight.nested_quant_map`, and
// `weight.quant_state.bitsandbytes__nf4` (the JSON of the non-tensor state as bytes); everything
// else in its 16-bit dtype; config.json gains `quantization_config`.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "autotrain/model/falcon.h"
#include "autotrain/model/loader.h"

namespace autotrain::quant {

// True when <dir>/config.json declares a bitsandbytes 4-bit checkpoint.
bool is_bnb_4bit_checkpoint(const std::filesystem::path& dir);

// Writes `model` (body linears already Linear4bit) to `out`: model.safetensors and config.json
// (from `source_dir`, with quantization_config added and "dtype" set as transformers 5 writes
// it), plus the tokenizer, generation and remote-code (*.py) files found in `source_dir`.
// Written to a temporary folder and renamed when complete. `out` (trailing "/" or "/." allowed)
// must not exist or be an empty folder: std::invalid_argument otherwise, as for a
// double-quantization offset that is not finite (it has no JSON form).
void save_bnb_4bit(model::FalconForCausalLM& model, const std::filesystem::path& source_dir,
                   const std::filesystem::path& out, const std::string& compute_dtype);

// Loads a pre-quantized checkpoint without re-quantizing: the packed weights and statistics go
// straight into Linear4bit layers; other tensors are converted to options.dtype.
std::unique_ptr<model::FalconForCausalLM> load_bnb_4bit(const std::filesystem::path& dir,
                                                        const model::LoadOptions& options = {});

}  // namespace autotrain::quant
