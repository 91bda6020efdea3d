// Choosing the next token from a row of logits as transformers' generate() does: its logits
// processors (repetition penalties, banned words, forced and suppressed tokens, ...), then with
// do_sample=True its warpers (TemperatureLogitsWarper, TopK, TopP, MinP, Typical, Epsilon, Eta in
// that order; removed tokens get -inf) and one draw of torch.multinomial over the softmax, or
// the argmax for greedy decoding (temperature 0).
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include "autotrain/model/generate.h"

namespace autotrain::model {

// Where a sequence stands when the scores of its next token are processed.
struct SequenceState {
  const std::vector<int64_t>& ids;  // the prompt and the new tokens so far
  int64_t prompt_length;
  int64_t max_length;               // prompt + the token budget (where forced_eos_token_id acts)
  const std::vector<int64_t>& eos;  // the end-of-sequence ids
};

// transformers' logits processors, in its order, on one row of fp32 scores ([V], on the CPU).
void apply_logits_processors(at::Tensor& scores, const SequenceState& sequence, const SamplingOptions& options);

// The warped scores of `logits` ([V] or [B, V], fp32): what the softmax is taken of.
// `min_tokens_to_keep` is transformers' (1, or the eos count + 1 in beam sampling).
at::Tensor warp_logits(const at::Tensor& logits, const SamplingOptions& options, int64_t min_tokens_to_keep = 1);

// renormalize_logits: the log-softmax of the final scores (transformers' LogitNormalization).
at::Tensor renormalize_if_asked(const at::Tensor& scores, const SamplingOptions& options);

// The next token from one row of final scores ([V], fp32, on the CPU: processed, warped when
// sampling); draws from `generator` when sampling. Given the same logits and a generator seeded
// with S, it draws what torch.manual_seed(S) + generate(do_sample=True) draws on the CPU.
int64_t choose_token(const at::Tensor& scores, const SamplingOptions& options, at::Generator& generator);

}  // namespace autotrain::model
