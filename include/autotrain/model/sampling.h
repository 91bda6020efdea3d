// Choosing the next token from a row of logits, as transformers' generate() does with
// do_sample=True: TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper in that order
// (removed tokens get -inf), then one draw of torch.multinomial over the softmax. Greedy
// decoding (temperature 0) is the argmax.
#pragma once

#include <cstdint>

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include "autotrain/model/generate.h"

namespace autotrain::model {

// The warped scores of `logits` ([V] or [B, V], fp32): what the softmax is taken of.
at::Tensor warp_logits(const at::Tensor& logits, const SamplingOptions& options);

// The next token for one row of fp32 logits ([V], on the CPU); draws from `generator` when
// sampling. Given the same logits and a generator seeded with S, it draws what
// torch.manual_seed(S) + generate(do_sample=True) draws on the CPU.
int64_t next_token(const at::Tensor& logits, const SamplingOptions& options, at::Generator& generator);

}  // namespace autotrain::model
