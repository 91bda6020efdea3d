// Building a FalconForCausalLM from a model folder (config.json + safetensors), streaming tensor
// by tensor into the target dtype and device, or from config.json alone with deterministic
// random weights when a caller asks for that explicitly (tiny test and CI models).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include <ATen/Tensor.h>

#include "autotrain/model/falcon.h"

namespace autotrain::model {

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;
  at::Device device = at::kCPU;
};

// Reads dir/config.json and the checkpoint. A missing lm_head.weight falls back to the tied
// embedding; missing or unexpected tensors and shape mismatches are errors listing them all.
// Throws ModelError or safetensors::SafetensorsError.
std::unique_ptr<FalconForCausalLM> load_falcon(const std::filesystem::path& dir, const LoadOptions& options = {});

// Weights drawn as transformers initialises Falcon (linear and embedding weights N(0, 0.02),
// biases 0, LayerNorm 1 and 0) from a CPU generator seeded with `seed`: the same seed gives
// the same model on every machine.
std::unique_ptr<FalconForCausalLM> random_falcon(const FalconConfig& config, uint64_t seed,
                                                 const LoadOptions& options = {});

}  // namespace autotrain::model
