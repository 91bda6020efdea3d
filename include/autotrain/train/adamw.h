// AdamW with torch.optim.AdamW's semantics (decoupled weight decay, bias-corrected moments,
// eps added after the square root), over a fixed list of fp32 parameters. On CUDA it runs
// LibTorch's fused kernel; on the CPU the single-tensor algorithm, so CPU runs are
// bit-reproducible and resumable. The state can be saved and restored exactly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/Tensor.h>
#include <c10/core/Device.h>

namespace autotrain::train {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  // LibTorch's fused kernel (torch.optim.AdamW(fused=True)), on the CPU as on CUDA: one call per
  // step instead of a handful of ops per parameter (~10% faster tiny-model steps on the CPU).
  // false: the single-tensor formula, element for element as torch's default CPU path.
  bool fused = true;
};

class AdamW {
 public:
  // `decay[i]` says whether parameter i gets weight decay (transformers exempts biases and
  // LayerNorm weights).
  AdamW(std::vector<at::Tensor> params, std::vector<bool> decay, AdamWOptions options = {});

  void step(double lr, double weight_decay);
  void zero_grad();

  int64_t steps() const { return step_; }
  const std::vector<at::Tensor>& params() const { return params_; }
  // exp_avg.<i>, exp_avg_sq.<i> for every parameter i; set_state takes the same layout.
  std::vector<std::pair<std::string, at::Tensor>> state_tensors() const;
  void set_state(int64_t steps, const std::vector<std::pair<std::string, at::Tensor>>& tensors);

 private:
  std::vector<at::Tensor> params_;
  std::vector<bool> decay_;
  AdamWOptions o_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_;
  int64_t step_ = 0;
  // The fused kernel's step number, one fp32 scalar per device (made on first use).
  std::vector<std::pair<at::Device, at::Tensor>> step_counts_;
  const at::Tensor& step_count(const at::Device& device);
};

// torch.nn.utils.clip_grad_norm_: the 2-norm over all gradients; when it exceeds max_norm
// every gradient is scaled by max_norm / (norm + 1e-6). Returns the norm before clipping.
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace autotrain::train
