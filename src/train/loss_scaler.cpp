#include "autotrain/train/loss_scaler.h"

#include <ATen/ATen.h>

namespace autotrain::train {

DynamicLossScaler::DynamicLossScaler(bool enabled, LossScalerState state, double growth_factor, double backoff_factor,
                                     int64_t growth_interval)
    : enabled_(enabled),
      state_(state),
      growth_factor_(growth_factor),
      backoff_factor_(backoff_factor),
      growth_interval_(growth_interval) {}

at::Tensor DynamicLossScaler::scale_loss(const at::Tensor& loss) const {
  return enabled_ ? loss * state_.scale : loss;
}

bool DynamicLossScaler::unscale_and_check(const std::vector<at::Tensor>& grads) {
  if (!enabled_ || grads.empty()) return false;
  // GradScaler multiplies by the fp32 reciprocal of the scale; one found_inf flag per device,
  // read back once per step (the one host sync this needs).
  const at::Device device = grads.front().device();
  at::Tensor inv_scale = at::full({}, 1.0 / state_.scale, at::TensorOptions().dtype(at::kFloat).device(device));
  at::Tensor found_inf = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device));
  at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv_scale);
  return found_inf.item<float>() != 0.0f;
}

void DynamicLossScaler::update(bool found_inf) {
  if (!enabled_) return;
  if (found_inf) {
    state_.scale *= backoff_factor_;
    state_.growth_tracker = 0;
    ++state_.skipped_steps;
    return;
  }
  if (++state_.growth_tracker == growth_interval_) {
    state_.scale *= growth_factor_;
    state_.growth_tracker = 0;
  }
}

}  // namespace autotrain::train
