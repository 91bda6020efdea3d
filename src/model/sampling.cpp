// transformers' logits processors and warpers, reproduced with the same tensor operations in the
// same order, so that the scores (and so the tokens) are its own bit for bit on the CPU.
#include "autotrain/model/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <ATen/ATen.h>

namespace autotrain::model {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

bool ends_with(const std::vector<int64_t>& ids, const std::vector<int64_t>& prefix) {
  return prefix.size() <= ids.size() && std::equal(prefix.begin(), prefix.end(), ids.end() - static_cast<std::ptrdiff_t>(prefix.size()));
}

// SequenceBiasLogitsProcessor: a bias vector (the one-token sequences' biases, then each longer
// sequence whose first tokens end the text adds its bias to its last token, grouped by prefix
// length in order of first appearance) added to the scores.
void apply_sequence_bias(at::Tensor& scores, const std::vector<int64_t>& ids,
                         const std::vector<std::pair<std::vector<int64_t>, double>>& biases) {
  if (biases.empty()) return;
  const int64_t vocab = scores.size(-1);
  // A sequence given twice counts once, with its last bias (a Python dict of tuples).
  std::vector<std::pair<std::vector<int64_t>, float>> unique;
  for (const auto& [sequence, bias] : biases) {
    auto same = std::find_if(unique.begin(), unique.end(), [&](const auto& u) { return u.first == sequence; });
    if (same != unique.end()) same->second = static_cast<float>(bias);
    else unique.emplace_back(sequence, static_cast<float>(bias));
  }
  at::Tensor bias = at::zeros({vocab}, scores.options());
  auto* b = bias.data_ptr<float>();
  for (const auto& [sequence, value] : unique)
    if (sequence.size() == 1 && sequence[0] < vocab) b[sequence[0]] = value;
  std::vector<size_t> prefix_lengths;  // in order of first appearance
  for (const auto& [sequence, value] : unique)
    if (sequence.size() > 1 && std::find(prefix_lengths.begin(), prefix_lengths.end(), sequence.size() - 1) == prefix_lengths.end())
      prefix_lengths.push_back(sequence.size() - 1);
  for (size_t length : prefix_lengths) {
    if (length > ids.size()) continue;  // longer than the text: ignored
    for (const auto& [sequence, value] : unique) {
      if (sequence.size() != length + 1 || sequence.back() >= vocab) continue;
      const std::vector<int64_t> prefix(sequence.begin(), sequence.end() - 1);
      b[sequence.back()] += ends_with(ids, prefix) ? value : 0.0f;
    }
  }
  scores.add_(bias);  // in place: `scores` may be one row of a batch
}

// A score multiplied (when negative) or divided by `penalty` for every token of `tokens`.
void penalize(at::Tensor& scores, const std::vector<int64_t>& tokens, double penalty) {
  const at::Tensor seen = at::tensor(tokens, at::TensorOptions().dtype(at::kLong));
  const at::Tensor score = scores.gather(0, seen);
  scores.scatter_(0, seen, at::where(score < 0, score * penalty, score / penalty));
}

void force_tokens(at::Tensor& scores, const std::vector<int64_t>& tokens) {
  scores.fill_(kNegInf);
  auto* data = scores.data_ptr<float>();
  for (int64_t id : tokens)
    if (id >= 0 && id < scores.size(-1)) data[id] = 0.0f;
}

void suppress(at::Tensor& scores, const std::vector<int64_t>& tokens) {
  auto* data = scores.data_ptr<float>();
  for (int64_t id : tokens)
    if (id >= 0 && id < scores.size(-1)) data[id] = kNegInf;
}

}  // namespace

void apply_logits_processors(at::Tensor& scores, const SequenceState& s, const SamplingOptions& o) {
  const auto length = static_cast<int64_t>(s.ids.size());
  const int64_t new_tokens = length - s.prompt_length;
  apply_sequence_bias(scores, s.ids, o.sequence_bias);
  if (o.encoder_repetition_penalty != 1.0 && s.prompt_length > 0)
    penalize(scores, std::vector<int64_t>(s.ids.begin(), s.ids.begin() + s.prompt_length),
             1.0 / o.encoder_repetition_penalty);  // 1/p: the prompt's tokens become more likely
  if (o.repetition_penalty != 1.0 && !s.ids.empty()) penalize(scores, s.ids, o.repetition_penalty);
  const auto n = static_cast<size_t>(std::max<int64_t>(o.no_repeat_ngram_size, 0));
  if (n > 0 && s.ids.size() + 1 >= n) {
    // Every earlier n-gram whose first n-1 tokens are the last n-1 ones bans its last token.
    auto* data = scores.data_ptr<float>();
    const auto& ids = s.ids;
    const size_t prefix_start = ids.size() + 1 - n;
    for (size_t i = 0; i + n <= ids.size(); ++i)
      if (std::equal(ids.begin() + static_cast<std::ptrdiff_t>(i), ids.begin() + static_cast<std::ptrdiff_t>(i + n - 1),
                     ids.begin() + static_cast<std::ptrdiff_t>(prefix_start)))
        data[ids[i + n - 1]] = kNegInf;
  }
  if (!o.bad_words_ids.empty()) {
    // NoBadWordsLogitsProcessor: a bias of -inf, except for a one-token "word" that is an eos.
    std::vector<std::pair<std::vector<int64_t>, double>> banned;
    for (const auto& word : o.bad_words_ids)
      if (!(word.size() == 1 && std::find(s.eos.begin(), s.eos.end(), word[0]) != s.eos.end()))
        banned.emplace_back(word, -std::numeric_limits<double>::infinity());
    apply_sequence_bias(scores, s.ids, banned);
  }
  if (length < o.min_length || new_tokens < o.min_new_tokens) suppress(scores, s.eos);
  if (o.forced_bos_token_id && length == 1) force_tokens(scores, {*o.forced_bos_token_id});
  if (!o.forced_eos_token_id.empty() && length == s.max_length - 1) force_tokens(scores, o.forced_eos_token_id);
  suppress(scores, o.suppress_tokens);
  if (!o.begin_suppress_tokens.empty()) {
    // The first new token; after a one-token prompt with a forced BOS, the one after that.
    const int64_t begin = s.prompt_length > 1 || !o.forced_bos_token_id ? s.prompt_length : s.prompt_length + 1;
    if (length == begin) suppress(scores, o.begin_suppress_tokens);
  }
}

at::Tensor warp_logits(const at::Tensor& logits, const SamplingOptions& o, int64_t min_tokens_to_keep) {
  at::Tensor scores = logits;
  const double neg_inf = -std::numeric_limits<double>::infinity();
  if (o.temperature != 1.0) scores = scores / o.temperature;
  const int64_t vocab = scores.size(-1);
  const int64_t keep = std::min(min_tokens_to_keep, vocab);
  if (o.top_k > 0) {
    // Every token scoring below the k-th best goes (ties with it stay).
    const int64_t k = std::min(std::max(o.top_k, min_tokens_to_keep), vocab);
    at::Tensor kth = std::get<0>(at::topk(scores, k)).narrow(-1, k - 1, 1);
    scores = scores.masked_fill(scores < kth, neg_inf);
  }
  if (o.top_p < 1.0) {
    // Ascending order: the tokens whose cumulative probability stays within 1 - top_p go; the
    // most likely tokens (min_tokens_to_keep of them) always stay.
    auto [sorted, order] = at::sort(scores, -1, /*descending=*/false);
    at::Tensor remove = sorted.softmax(-1).cumsum(-1) <= (1.0 - o.top_p);
    remove.narrow(-1, vocab - keep, keep).fill_(false);
    scores = scores.masked_fill(remove.scatter(-1, order, remove), neg_inf);
  }
  if (o.min_p > 0) {
    // Tokens less likely than min_p times the best one go.
    at::Tensor probs = scores.softmax(-1);
    at::Tensor remove = probs < (probs.amax(-1, /*keepdim=*/true) * o.min_p);
    remove.scatter_(-1, std::get<1>(at::topk(probs, keep, -1)), false);
    scores = scores.masked_fill(remove, neg_inf);
  }
  if (o.typical_p < 1.0) {
    // Tokens by how far their information is from the entropy; the closest ones up to typical_p
    // of the probability stay.
    const bool row = scores.dim() == 1;
    at::Tensor batch = row ? scores.unsqueeze(0) : scores;
    at::Tensor normalized = batch.log_softmax(-1);
    at::Tensor p = normalized.exp();
    at::Tensor entropy = -(normalized * p).nansum(-1, /*keepdim=*/true);
    at::Tensor shifted = (-normalized - entropy).abs();
    auto [sorted, order] = at::sort(shifted, -1, /*descending=*/false);
    at::Tensor cumulative = batch.gather(-1, order).softmax(-1).cumsum(-1);
    at::Tensor last = (cumulative < o.typical_p).sum(1).clamp_max(vocab - 1);
    at::Tensor remove = sorted > sorted.gather(1, last.view({-1, 1}));
    remove.narrow(-1, 0, keep).fill_(false);
    batch = batch.masked_fill(remove.scatter(1, order, remove), neg_inf);
    scores = row ? batch.squeeze(0) : batch;
  }
  for (const bool eta : {false, true}) {
    const double cutoff = eta ? o.eta_cutoff : o.epsilon_cutoff;
    if (!(cutoff > 0 && cutoff < 1)) continue;
    at::Tensor probs = scores.softmax(-1);
    at::Tensor below;
    if (!eta) {
      below = probs < cutoff;
    } else {
      // eta = min(epsilon, sqrt(epsilon) * exp(-entropy)), the entropy as torch's Categorical
      // computes it (normalised logits clamped to the dtype's lowest value).
      const at::Tensor epsilon = at::scalar_tensor(cutoff, scores.options());
      at::Tensor normalized = scores - scores.logsumexp(-1, /*keepdim=*/true);
      at::Tensor clamped = normalized.clamp_min(std::numeric_limits<float>::lowest());
      at::Tensor entropy = -(clamped * normalized.softmax(-1)).sum(-1);
      below = probs < at::minimum(epsilon, epsilon.sqrt() * (-entropy).exp()).unsqueeze(-1);
    }
    at::Tensor kth = std::get<0>(at::topk(scores, keep)).narrow(-1, keep - 1, 1);
    scores = scores.masked_fill(below & (scores < kth), neg_inf);
  }
  return scores;
}

at::Tensor renormalize_if_asked(const at::Tensor& scores, const SamplingOptions& o) {
  return o.renormalize_logits ? scores.log_softmax(-1) : scores;
}

int64_t choose_token(const at::Tensor& scores, const SamplingOptions& o, at::Generator& generator) {
  if (o.temperature <= 0) return scores.argmax(-1).item<int64_t>();
  at::Tensor probs = scores.unsqueeze(0).softmax(-1);
  // A temperature so small that the scores overflow leaves no distribution to draw from (torch
  // raises): its limit is greedy decoding, which is what it gets.
  if (!probs.isfinite().all().item<bool>()) return scores.argmax(-1).item<int64_t>();
  return at::multinomial(probs, 1, /*replacement=*/false, generator).item<int64_t>();
}

}  // namespace autotrain::model
