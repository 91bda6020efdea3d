// FalconForCausalLM on ATen, following transformers' modeling_falcon.py op by op (spec §1.3):
// falcon-7b (multi-query, parallel attention, one LayerNorm), falcon-40b (new decoder: grouped
// KV heads, ln_attn/ln_mlp) and falcon-rw-1b (sequential, ALiBi, biases).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>

#include "autotrain/model/falcon_config.h"
#include "autotrain/model/linear.h"

namespace autotrain::model {

struct LayerNorm {
  at::Tensor weight, bias;
  double eps = 1e-5;
  at::Tensor forward(const at::Tensor& x) const;
};

// Keys and values of the tokens seen so far, per layer ([B, kv_heads, T, head_dim], after
// rotary), for incremental decoding.
struct KVCache {
  std::vector<at::Tensor> keys, values;
  int64_t length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
};

struct FalconInputs {
  at::Tensor input_ids;       // [B, S] int64; or
  at::Tensor inputs_embeds;   // [B, S, hidden] (takes precedence)
  at::Tensor attention_mask;  // [B, past + S]: 1 = token, 0 = padding; undefined = no padding
  at::Tensor position_ids;    // [B or 1, S]; undefined = past + arange(S), as transformers' forward
};

// The parameters a config implies, in checkpoint naming, with their shapes.
struct ParamSpec {
  std::string name;
  std::vector<int64_t> shape;
  enum Kind { kEmbedding, kLinearWeight, kLinearBias, kNormWeight, kNormBias } kind;
};
std::vector<ParamSpec> falcon_parameter_specs(const FalconConfig& cfg);

class FalconForCausalLM {
 public:
  // Builds the structure with undefined tensors; a loader (load_falcon) or random_init fills them.
  // `device`: where the weights will be, so the rotary frequencies are copied there once rather
  // than on every forward (a copy from pageable memory that would stall the host each time).
  explicit FalconForCausalLM(FalconConfig cfg, const at::Device& device = at::kCPU);

  const FalconConfig& config() const { return cfg_; }
  // Where the weights live and their dtype (those of the embedding).
  at::Device device() const { return word_embeddings_.device(); }
  at::ScalarType dtype() const { return word_embeddings_.scalar_type(); }

  // Final hidden states (after ln_f), [B, S, hidden]. With `cache`, the new keys/values are
  // appended and rotary/ALiBi positions continue after the cached ones.
  at::Tensor hidden_states(const FalconInputs& in, KVCache* cache = nullptr) const;
  // lm_head over hidden states: [B, S, vocab] in the activation dtype.
  at::Tensor logits(const at::Tensor& hidden) const { return lm_head_->forward(hidden); }
  at::Tensor forward(const FalconInputs& in, KVCache* cache = nullptr) const { return logits(hidden_states(in, cache)); }
  at::Tensor embed(const at::Tensor& input_ids) const;

  // Every parameter by checkpoint name; lm_head.weight only when it is not tied to the embedding.
  std::vector<std::pair<std::string, at::Tensor*>> named_parameters();
  // Every linear layer, lm_head included.
  std::vector<LinearSlot> linears();
  const Linear& lm_head() const { return *lm_head_; }
  // Makes lm_head use the embedding matrix (tie_word_embeddings, or a checkpoint without lm_head).
  void tie_lm_head();
  bool lm_head_tied() const { return tied_; }
  // Gives a tied lm_head a weight of its own (a copy of the embedding; config().tie_word_embeddings
  // becomes false), so that changing one leaves the other as it is. A wrapped head (a LoRA layer)
  // keeps its tensor: it is untied by replacing that tensor (merging does).
  void untie_lm_head();
  // Recompute each decoder layer in backward instead of keeping its activations (training
  // without a KV cache only); results are identical, memory is one layer's activations.
  void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }

 private:
  struct Layer {
    LayerNorm input_layernorm, post_attention_layernorm, ln_attn, ln_mlp;
    LinearPtr query_key_value, dense, dense_h_to_4h, dense_4h_to_h;
  };
  at::Tensor layer_forward(const Layer& layer, int64_t index, const at::Tensor& x, const at::Tensor& cos,
                           const at::Tensor& sin, const at::Tensor& mask, bool is_causal, KVCache* cache) const;
  at::Tensor attention(const Layer& layer, int64_t index, const at::Tensor& x, const at::Tensor& cos,
                       const at::Tensor& sin, const at::Tensor& mask, bool is_causal, KVCache* cache) const;

  FalconConfig cfg_;
  at::Tensor word_embeddings_;
  std::vector<Layer> layers_;
  LayerNorm ln_f_;
  LinearPtr lm_head_;
  bool tied_ = false;
  bool gradient_checkpointing_ = false;
  at::Tensor inv_freq_;  // rotary inverse frequencies, fp32 (computed on the CPU as transformers does)
};

// Greedy decoding with the KV cache: appends `max_new_tokens` argmax tokens to `prompt` ([S]
// ids, one sequence), stopping early after `eos` when given. Returns only the new tokens.
std::vector<int64_t> greedy_generate(const FalconForCausalLM& model, const std::vector<int64_t>& prompt,
                                     int64_t max_new_tokens, std::optional<int64_t> eos = std::nullopt);

}  // namespace autotrain::model
