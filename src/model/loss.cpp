#include "autotrain/model/loss.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/Reduction.h>
#include <torch/csrc/autograd/custom_function.h>

namespace autotrain::model {

namespace {

constexpr int64_t kIgnore = -100;

at::ScalarType projection_dtype(const at::Tensor& hidden) {
  const at::DeviceType device = hidden.device().type();
  if (at::autocast::is_autocast_enabled(device) && at::isFloatingType(hidden.scalar_type()))
    return at::autocast::get_autocast_dtype(device);
  return hidden.scalar_type();
}

// Sum of cross-entropy over rows of `hidden` [N, H] with weight [V, H]. Backward recomputes the
// logits chunk by chunk: d loss / d logits = softmax - one_hot(label) on non-ignored rows.
struct ChunkedLinearCrossEntropy : public torch::autograd::Function<ChunkedLinearCrossEntropy> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& labels, int64_t chunk) {
    ctx->save_for_backward({hidden, weight, labels});
    ctx->saved_data["chunk"] = chunk;
    // The projection's dtype: autocast's when the forward runs under it (as at::linear would
    // cast), else the hidden states'. Saved, because backward runs outside autocast and must
    // differentiate this computation, not an fp32 one (nor mix an fp32 input with a 16-bit weight).
    const at::ScalarType dtype = projection_dtype(hidden);
    ctx->saved_data["dtype"] = static_cast<int64_t>(dtype);
    const at::Tensor w = weight.to(dtype);  // one cast for all chunks
    at::Tensor total = at::zeros({}, hidden.options().dtype(at::kFloat));
    for (int64_t start = 0; start < hidden.size(0); start += chunk) {
      int64_t n = std::min(chunk, hidden.size(0) - start);
      at::Tensor logits = at::linear(hidden.narrow(0, start, n).to(dtype), w).to(at::kFloat);
      total += at::cross_entropy_loss(logits, labels.narrow(0, start, n), {}, at::Reduction::Sum, kIgnore);
    }
    return total;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &hidden = saved[0], &weight = saved[1], &labels = saved[2];
    int64_t chunk = ctx->saved_data["chunk"].toInt();
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    const at::Tensor w = weight.to(dtype);
    at::Tensor g_out = grad_outputs[0].to(at::kFloat);
    bool want_h = ctx->needs_input_grad(0), want_w = ctx->needs_input_grad(1);
    at::Tensor grad_h = want_h ? at::empty_like(hidden) : at::Tensor();
    at::Tensor grad_w = want_w ? at::zeros(weight.sizes(), weight.options().dtype(at::kFloat)) : at::Tensor();
    for (int64_t start = 0; start < hidden.size(0); start += chunk) {
      int64_t n = std::min(chunk, hidden.size(0) - start);
      at::Tensor h = hidden.narrow(0, start, n).to(dtype);
      at::Tensor y = labels.narrow(0, start, n);
      at::Tensor probs = at::softmax(at::linear(h, w).to(at::kFloat), -1);
      at::Tensor valid = y != kIgnore;
      at::Tensor target = at::where(valid, y, at::zeros_like(y)).unsqueeze(1);
      probs.scatter_add_(1, target, at::full({n, 1}, -1.0f, probs.options()));
      at::Tensor g = (probs * valid.unsqueeze(1).to(at::kFloat) * g_out).to(dtype);
      if (want_h) grad_h.narrow(0, start, n).copy_(at::matmul(g, w));  // back to the hidden states' dtype
      if (want_w) grad_w += at::matmul(g.t(), h).to(at::kFloat);
    }
    if (want_w) grad_w = grad_w.to(weight.scalar_type());
    return {grad_h, grad_w, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

LossOutput causal_lm_loss(const Linear& lm_head, const at::Tensor& hidden, const at::Tensor& labels,
                          LossReduction reduction, int64_t chunk_tokens, std::optional<int64_t> known_tokens) {
  const int64_t B = hidden.size(0), S = hidden.size(1), H = hidden.size(2);
  // Shift: position t predicts label t+1; the last position predicts nothing.
  at::Tensor h = hidden.narrow(1, 0, S - 1).reshape({B * (S - 1), H});
  at::Tensor y = labels.narrow(1, 1, S - 1).reshape({B * (S - 1)}).to(hidden.device(), at::kLong);
  LossOutput out;
  out.tokens = known_tokens ? *known_tokens : (y != kIgnore).sum().item<int64_t>();
  auto* dense = dynamic_cast<const DenseLinear*>(&lm_head);
  if (dense && !dense->has_bias()) {
    out.loss = ChunkedLinearCrossEntropy::apply(h, dense->weight, y, chunk_tokens);
  } else {
    // A replaced lm_head (e.g. with an adapter): chunked forward only; autograd keeps the logits.
    out.loss = at::zeros({}, hidden.options().dtype(at::kFloat));
    for (int64_t start = 0; start < h.size(0); start += chunk_tokens) {
      int64_t n = std::min(chunk_tokens, h.size(0) - start);
      at::Tensor logits = lm_head.forward(h.narrow(0, start, n)).to(at::kFloat);
      out.loss = out.loss + at::cross_entropy_loss(logits, y.narrow(0, start, n), {}, at::Reduction::Sum, kIgnore);
    }
  }
  if (reduction == LossReduction::kMean) out.loss = out.loss / static_cast<double>(out.tokens);
  return out;
}

}  // namespace autotrain::model
