// Building a FalconForCausalLM from a model folder (config.json + safetensors), streaming tensor
// by tensor into the target dtype and device, or from config.json alone with deterministic
// random weights when a caller asks for that explicitly (tiny test and CI models).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <memory>
#include <string>

#include <ATen/Tensor.h>

#include "autotrain/model/falcon.h"
#include "autotrain/safetensors/checkpoint.h"

namespace autotrain::model {

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;
  at::Device device = at::kCPU;
  // Called once per body linear layer (not lm_head) as soon as all its tensors are loaded, with
  // the slot holding it: the QLoRA path quantizes it there (quantize-on-load), so memory holds
  // the 4-bit model plus about one dense layer rather than the whole dense model.
  std::function<void(const std::string& name, LinearPtr& slot)> on_linear_loaded;
};

// How a checkpoint's embedding and lm_head relate, decided as transformers 5 ties them when it
// loads: with tie_word_embeddings (Falcon's default) a stored lm_head.weight equal to the embedding
// (RW-era uploads store a copy) is tied; one with other values is NOT tied (transformers warns and
// keeps the stored head); a checkpoint with lm_head.weight but no embedding ties the embedding to
// the head. Without tie_word_embeddings both are separate tensors.
enum class HeadTying { kTied, kUntied, kEmbeddingFromHead };
HeadTying checkpoint_head_tying(const FalconConfig& cfg, const safetensors::CheckpointFiles& files);

// Reads dir/config.json and the checkpoint (the embedding and lm_head tied as
// checkpoint_head_tying says); missing or unexpected tensors and shape mismatches are errors
// listing them all. Throws ModelError or safetensors::SafetensorsError.
std::unique_ptr<FalconForCausalLM> load_falcon(const std::filesystem::path& dir, const LoadOptions& options = {});

// Weights drawn as transformers initialises Falcon (linear and embedding weights
// N(0, initializer_range = 0.02 by default),
// biases 0, LayerNorm 1 and 0) from a CPU generator seeded with `seed`: the same seed gives
// the same model on every machine.
std::unique_ptr<FalconForCausalLM> random_falcon(const FalconConfig& config, uint64_t seed,
                                                 const LoadOptions& options = {});

// Writes `model` as a Hugging Face model folder: `config_json_text` as config.json and the
// parameters (tied lm_head left out, as save_pretrained does) in fp32/bf16/... as they are, in
// shards of at most `max_shard_bytes` (+ model.safetensors.index.json when more than one).
// Every file is written atomically.
void save_falcon(FalconForCausalLM& model, const std::filesystem::path& dir, const std::string& config_json_text,
                 uint64_t max_shard_bytes = uint64_t{5} << 30);
// The weights part of save_falcon (no config.json).
void save_falcon_weights(FalconForCausalLM& model, const std::filesystem::path& dir,
                         uint64_t max_shard_bytes = uint64_t{5} << 30);

// A model folder created from a config.json alone, with random_falcon(seed) weights in fp32:
// for tiny test and CI models, only when a caller asks for it (never as a fallback).
void write_random_checkpoint(const std::filesystem::path& config_json, const std::filesystem::path& dir,
                             uint64_t seed, uint64_t max_shard_bytes = uint64_t{5} << 30);

}  // namespace autotrain::model
