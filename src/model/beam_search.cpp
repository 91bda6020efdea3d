// Beam search as transformers 5's `_beam_search` runs it (one prompt), with the same tensor
// operations on the same shapes where a choice is made (top-k over [1, beams * vocab], the -1e9
// penalties added in fp32, the merge of finished hypotheses), so that ties and near ties fall the
// same way. Hypotheses' tokens are kept as vectors; the scores as fp32 tensors on the CPU.
#include "beam_search.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <fmt/format.h>

#include "autotrain/model/sampling.h"

namespace autotrain::model {

namespace {

constexpr double kLost = -1.0e9;  // transformers' score for "never choose this"

at::Tensor penalty_where(const at::Tensor& mask) { return mask.to(at::kFloat) * kLost; }

}  // namespace

BeamSearchResult beam_search(const FalconForCausalLM& model, const at::Device& device,
                             const std::vector<int64_t>& prompt, int64_t max_new_tokens, const SamplingOptions& o,
                             const std::vector<int64_t>& eos, at::Generator& generator,
                             const std::function<bool(const std::vector<int64_t>&)>& reached_stop) {
  at::NoGradGuard no_grad;
  const int64_t beams = o.num_beams;
  const bool sampling = o.temperature > 0;
  const auto prompt_length = static_cast<int64_t>(prompt.size());
  const int64_t max_length = prompt_length + max_new_tokens;
  // The candidates kept each step: enough that `beams` of them go on even when the best ones all
  // end (on any of the eos ids).
  const int64_t candidates = std::max<int64_t>(2, 1 + static_cast<int64_t>(eos.size())) * beams;
  const int64_t min_tokens_to_keep = eos.empty() ? 2 : static_cast<int64_t>(eos.size()) + 1;
  const auto fp32 = at::TensorOptions().dtype(at::kFloat);
  const auto is_eos = [&](int64_t id) { return std::find(eos.begin(), eos.end(), id) != eos.end(); };

  // Running hypotheses: only the first scores 0 at the start, so the identical beams do not
  // all pick the same tokens.
  std::vector<std::vector<int64_t>> running(static_cast<size_t>(beams));
  at::Tensor running_scores = at::zeros({1, beams}, fp32);
  running_scores.narrow(1, 1, beams - 1).fill_(kLost);
  // Finished hypotheses, best first; empty slots score -1e9.
  std::vector<std::vector<int64_t>> finished(static_cast<size_t>(beams));
  at::Tensor finished_scores = at::full({1, beams}, kLost, fp32);
  at::Tensor finished_set = at::zeros({1, beams}, at::TensorOptions().dtype(at::kBool));
  at::Tensor can_improve = at::ones({1, 1}, at::TensorOptions().dtype(at::kBool));
  at::Tensor top_beams_mask = at::cat({at::ones({beams}, at::TensorOptions().dtype(at::kBool)),
                                       at::zeros({candidates - beams}, at::TensorOptions().dtype(at::kBool))});

  KVCache cache;
  FalconInputs in;
  // The prompt once per beam, as generate() expands it (one batch, so each row's logits are the
  // ones transformers computes).
  in.input_ids =
      at::tensor(prompt, at::TensorOptions().dtype(at::kLong)).unsqueeze(0).expand({beams, prompt_length}).contiguous().to(device);
  std::vector<int64_t> ids;  // one hypothesis's prompt + tokens, for the processors
  for (int64_t length = prompt_length;; ++length) {
    at::Tensor logits = model.forward(in, &cache);
    at::Tensor log_probs =
        logits.select(1, logits.size(1) - 1).to(at::kFloat).to(at::kCPU).contiguous().log_softmax(-1);  // [beams, V]
    const int64_t vocab = log_probs.size(1);
    for (int64_t b = 0; b < beams; ++b) {
      ids.assign(prompt.begin(), prompt.end());
      ids.insert(ids.end(), running[static_cast<size_t>(b)].begin(), running[static_cast<size_t>(b)].end());
      at::Tensor row = log_probs.select(0, b);
      apply_logits_processors(row, SequenceState{ids, prompt_length, max_length, eos}, o);
    }
    if (sampling) log_probs = warp_logits(log_probs, o, min_tokens_to_keep);
    log_probs = renormalize_if_asked(log_probs, o);
    const at::Tensor summed = (log_probs.unsqueeze(0) + running_scores.unsqueeze(-1)).reshape({1, beams * vocab});

    // The best (or drawn) continuations over all beams.
    at::Tensor top_scores, top_index;
    if (sampling) {
      // Without replacement, as torch draws it: the exponential race, in which tokens of
      // probability 0 come last but can still be drawn when too few others are left.
      const at::Tensor probs = summed.softmax(-1);
      top_index = at::multinomial(probs, candidates, /*replacement=*/false, generator);
      top_scores = summed.gather(1, top_index);
    } else {
      std::tie(top_scores, top_index) = at::topk(summed, candidates);
    }
    std::vector<std::vector<int64_t>> extended(static_cast<size_t>(candidates));
    std::vector<int64_t> source(static_cast<size_t>(candidates));
    at::Tensor ended = at::zeros({1, candidates}, at::TensorOptions().dtype(at::kBool));
    const auto chosen = top_index.accessor<int64_t, 2>();
    auto* ended_flags = ended.data_ptr<bool>();
    for (int64_t k = 0; k < candidates; ++k) {
      const int64_t flat = chosen[0][k];
      const int64_t token = flat % vocab;
      source[static_cast<size_t>(k)] = flat / vocab;
      auto& hypothesis = extended[static_cast<size_t>(k)];
      hypothesis = running[static_cast<size_t>(flat / vocab)];
      hypothesis.push_back(token);
      ended_flags[k] = length + 1 >= max_length || is_eos(token) || (reached_stop && reached_stop(hypothesis));
    }

    // The best candidates that go on.
    const at::Tensor running_candidates = top_scores + penalty_where(ended);
    const at::Tensor next = std::get<1>(at::topk(running_candidates, beams));
    running_scores = running_candidates.gather(1, next);
    std::vector<int64_t> reorder(static_cast<size_t>(beams));
    const auto next_of = next.accessor<int64_t, 2>();
    for (int64_t b = 0; b < beams; ++b) {
      const int64_t k = next_of[0][b];
      running[static_cast<size_t>(b)] = extended[static_cast<size_t>(k)];
      reorder[static_cast<size_t>(b)] = source[static_cast<size_t>(k)];
    }

    // Candidates among the top `beams` that just ended join the finished ones, ranked by their
    // length-penalised score, unless no room or no improvement is left.
    const at::Tensor just_finished = ended & top_beams_mask.unsqueeze(0);
    at::Tensor scored = top_scores / std::pow(static_cast<double>(length + 1 - prompt_length), o.length_penalty);
    const bool full = finished_set.all().item<bool>() && o.early_stopping == SamplingOptions::EarlyStopping::kWhenFull;
    scored += penalty_where(at::scalar_tensor(full, at::TensorOptions().dtype(at::kBool)).reshape({1, 1}));
    scored += penalty_where(~can_improve);
    scored += penalty_where(~just_finished);
    const at::Tensor merged_scores = at::cat({finished_scores, scored}, 1);
    const at::Tensor merged_set = at::cat({finished_set, just_finished}, 1);
    const at::Tensor keep = std::get<1>(at::topk(merged_scores, beams));
    std::vector<std::vector<int64_t>> kept(static_cast<size_t>(beams));
    const auto keep_of = keep.accessor<int64_t, 2>();
    for (int64_t b = 0; b < beams; ++b) {
      const int64_t i = keep_of[0][b];
      kept[static_cast<size_t>(b)] = i < beams ? finished[static_cast<size_t>(i)] : extended[static_cast<size_t>(i - beams)];
    }
    finished = std::move(kept);
    finished_scores = merged_scores.gather(1, keep);
    finished_set = merged_set.gather(1, keep);

    // Can a running hypothesis still beat the worst finished one?
    const int64_t generated = length + 1 - prompt_length;
    const int64_t best_length =
        o.early_stopping == SamplingOptions::EarlyStopping::kNever && o.length_penalty > 0.0 ? max_length - prompt_length
                                                                                              : generated;
    const at::Tensor best_possible = running_scores.narrow(1, 0, 1) / std::pow(static_cast<double>(best_length), o.length_penalty);
    const at::Tensor worst_finished = at::where(finished_set, std::get<0>(finished_scores.min(1, /*keepdim=*/true)), kLost);
    can_improve = can_improve & (best_possible > worst_finished).any(-1, /*keepdim=*/true);
    const bool all_full = finished_set.all().item<bool>() && o.early_stopping == SamplingOptions::EarlyStopping::kWhenFull;
    if (!can_improve.any().item<bool>() || all_full || ended.all().item<bool>()) break;

    const at::Tensor order = at::tensor(reorder, at::TensorOptions().dtype(at::kLong)).to(device);
    for (auto& t : cache.keys) t = t.index_select(0, order);
    for (auto& t : cache.values) t = t.index_select(0, order);
    std::vector<int64_t> last(static_cast<size_t>(beams));
    for (int64_t b = 0; b < beams; ++b) last[static_cast<size_t>(b)] = running[static_cast<size_t>(b)].back();
    in.input_ids = at::tensor(last, at::TensorOptions().dtype(at::kLong)).unsqueeze(1).to(device);
  }
  BeamSearchResult r;
  r.ids = finished.front();
  r.stopped = reached_stop && !r.ids.empty() && !is_eos(r.ids.back()) && reached_stop(r.ids);
  return r;
}

}  // namespace autotrain::model
