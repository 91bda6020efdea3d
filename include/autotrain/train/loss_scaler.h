// Dynamic loss scaling for fp16 training, with torch.amp.GradScaler's semantics (LibTorch has
// autocast but no GradScaler, DESIGN.md D5): the loss is multiplied by `scale` before backward;
// the gradients are divided by it before clipping; a step whose gradients hold inf/nan is
// skipped and the scale halves; after `growth_interval` good steps in a row it doubles.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/Tensor.h>

namespace autotrain::train {

struct LossScalerState {
  double scale = 65536.0;
  int64_t growth_tracker = 0;  // good steps since the last change
  int64_t skipped_steps = 0;
};

class DynamicLossScaler {
 public:
  explicit DynamicLossScaler(bool enabled, LossScalerState state = {}, double growth_factor = 2.0,
                             double backoff_factor = 0.5, int64_t growth_interval = 2000);

  bool enabled() const { return enabled_; }
  // loss * scale (the loss itself when disabled).
  at::Tensor scale_loss(const at::Tensor& loss) const;
  // Divides every gradient by the scale in place; returns whether any was inf/nan.
  bool unscale_and_check(const std::vector<at::Tensor>& grads);
  // After a step (taken or skipped): backs off on overflow, else counts toward growth.
  void update(bool found_inf);

  const LossScalerState& state() const { return state_; }

 private:
  bool enabled_;
  LossScalerState state_;
  double growth_factor_, backoff_factor_;
  int64_t growth_interval_;
};

}  // namespace autotrain::train
