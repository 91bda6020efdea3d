// The causal language-modelling loss of transformers' ForCausalLMLoss (spec §1.4): position t
// predicts label t+1, labels of -100 are ignored, cross-entropy in fp32.
#pragma once

#include <cstdint>
#include <optional>

#include <ATen/Tensor.h>

#include "autotrain/model/linear.h"

namespace autotrain::model {

enum class LossReduction {
  kMean,  // sum / number of predicted (non-ignored) tokens: transformers' default
  kSum,   // the sum; the trainer divides by the token count of the whole accumulated batch
};

// Rows of the vocabulary projection computed at once (see causal_lm_loss).
inline constexpr int64_t kDefaultLossChunkTokens = 1024;

struct LossOutput {
  at::Tensor loss;     // fp32 scalar
  int64_t tokens = 0;  // predicted tokens (shifted labels != -100)
};

// Loss of `lm_head` over `hidden` [B, S, hidden] against `labels` [B, S] (same positions as the
// input; shifted here). The vocabulary projection runs `chunk_tokens` rows at a time and, when
// lm_head is a plain dense layer, its backward pass recomputes each chunk's logits, so fp32
// logits for all tokens never exist at once, in forward or backward. `known_tokens`: the
// predicted-token count when the caller has it already (the trainer reads it from the token
// cache); counting on the device would make the host wait for the GPU once per micro-batch.
LossOutput causal_lm_loss(const Linear& lm_head, const at::Tensor& hidden, const at::Tensor& labels,
                          LossReduction reduction = LossReduction::kMean,
                          int64_t chunk_tokens = kDefaultLossChunkTokens,
                          std::optional<int64_t> known_tokens = std::nullopt);

}  // namespace autotrain::model
