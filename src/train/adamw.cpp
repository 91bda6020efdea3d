#include "autotrain/train/adamw.h"

#include <cmath>
#include <map>
#include <stdexcept>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <fmt/format.h>

namespace autotrain::train {

AdamW::AdamW(std::vector<at::Tensor> params, std::vector<bool> decay, AdamWOptions options)
    : params_(std::move(params)), decay_(std::move(decay)), o_(options) {
  if (decay_.size() != params_.size()) throw std::invalid_argument("AdamW: one decay flag per parameter");
  for (const auto& p : params_) {
    exp_avg_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
    exp_avg_sq_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();  // set_to_none, as torch's default
}

const at::Tensor& AdamW::step_count(const at::Device& device) {
  for (auto& [d, count] : step_counts_)
    if (d == device) return count;
  step_counts_.emplace_back(
      device, at::full({}, static_cast<double>(step_), at::TensorOptions().dtype(at::kFloat).device(device)));
  return step_counts_.back().second;
}

void AdamW::step(double lr, double weight_decay) {
  at::NoGradGuard no_grad;
  ++step_;
  if (o_.fused) {
    // torch increments its step tensors before the fused call: the kernel sees this step's
    // number. The kernel only reads them, so every parameter of a device shares one tensor,
    // set once per step (torch keeps one per parameter and adds 1 to each).
    for (auto& [device, count] : step_counts_) count.fill_(static_cast<double>(step_));
    // Groups by weight decay (two calls at most), as torch's param groups would.
    for (bool with_decay : {true, false}) {
      std::vector<at::Tensor> ps, gs, ms, vs, steps;
      for (size_t i = 0; i < params_.size(); ++i) {
        if (decay_[i] != with_decay || !params_[i].grad().defined()) continue;
        ps.push_back(params_[i]);
        gs.push_back(params_[i].grad());
        ms.push_back(exp_avg_[i]);
        vs.push_back(exp_avg_sq_[i]);
        steps.push_back(step_count(params_[i].device()));
      }
      if (ps.empty()) continue;
      at::_fused_adamw_(ps, gs, ms, vs, {}, steps, lr, o_.beta1, o_.beta2, with_decay ? weight_decay : 0.0, o_.eps,
                        /*amsgrad=*/false, /*maximize=*/false);
    }
    return;
  }
  const double bias_correction1 = 1.0 - std::pow(o_.beta1, static_cast<double>(step_));
  const double bias_correction2 = 1.0 - std::pow(o_.beta2, static_cast<double>(step_));
  const double step_size = lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    if (!p.grad().defined()) continue;
    const at::Tensor& g = p.grad();
    if (decay_[i] && weight_decay != 0.0) p.mul_(1.0 - lr * weight_decay);
    exp_avg_[i].lerp_(g, 1.0 - o_.beta1);
    exp_avg_sq_[i].mul_(o_.beta2).addcmul_(g, g, 1.0 - o_.beta2);
    at::Tensor denom = (exp_avg_sq_[i].sqrt() / bias_correction2_sqrt).add_(o_.eps);
    p.addcdiv_(exp_avg_[i], denom, -step_size);
  }
}

std::vector<std::pair<std::string, at::Tensor>> AdamW::state_tensors() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back(fmt::format("exp_avg.{}", i), exp_avg_[i]);
    out.emplace_back(fmt::format("exp_avg_sq.{}", i), exp_avg_sq_[i]);
  }
  return out;
}

void AdamW::set_state(int64_t steps, const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::map<std::string, at::Tensor> byname(tensors.begin(), tensors.end());
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    for (auto [name, dst] : {std::pair{"exp_avg", &exp_avg_[i]}, std::pair{"exp_avg_sq", &exp_avg_sq_[i]}}) {
      auto it = byname.find(fmt::format("{}.{}", name, i));
      if (it == byname.end() || it->second.sizes() != dst->sizes())
        throw std::runtime_error(fmt::format("optimizer state: {}.{} is missing or has the wrong shape", name, i));
      dst->copy_(it->second);
    }
  }
  step_ = steps;
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  // The foreach kernels, as torch's clip_grad_norm_ (foreach=None picks them on CUDA): a couple
  // of launches for all the LoRA matrices instead of two per matrix. They fall back to one op per
  // tensor where the fast path does not apply (the CPU; mixed dtypes).
  std::vector<at::Tensor> norms = at::_foreach_norm(grads, 2.0, at::kFloat);
  at::Tensor total = at::linalg_vector_norm(at::stack(norms), 2.0);
  if (max_norm > 0) {
    at::Tensor coef = at::clamp_max(max_norm / (total + 1e-6), 1.0);
    at::_foreach_mul_(grads, coef);
  }
  return total.item<double>();
}

}  // namespace autotrain::train
