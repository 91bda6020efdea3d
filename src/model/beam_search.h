// Beam search (and beam sampling) as transformers' generate() runs it for num_beams > 1.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/Device.h>
#include <ATen/core/Generator.h>

#include "autotrain/model/falcon.h"
#include "autotrain/model/generate.h"

namespace autotrain::model {

struct BeamSearchResult {
  std::vector<int64_t> ids;  // the best finished hypothesis's new tokens
  bool stopped = false;      // it finished on a stop string (`reached_stop`)
};

// Keeps options.num_beams hypotheses of `prompt`, each step extending them by the best (or, when
// sampling, drawn) continuations of their summed log-probabilities after the logits processors
// and warpers (sampling.h), until every budget is spent or, per early_stopping, no running
// hypothesis can beat the finished ones. A hypothesis finishes on an end-of-sequence id, at the
// budget, or when `reached_stop` says its new tokens reach a stop string.
BeamSearchResult beam_search(const FalconForCausalLM& model, const at::Device& device,
                             const std::vector<int64_t>& prompt, int64_t max_new_tokens,
                             const SamplingOptions& options, const std::vector<int64_t>& eos,
                             at::Generator& generator,
                             const std::function<bool(const std::vector<int64_t>&)>& reached_stop);

}  // namespace autotrain::model
