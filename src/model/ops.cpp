#include "ops.h"

#include <cmath>

#include <ATen/ATen.h>

namespace autotrain::model::ops {

at::Tensor rotary_inv_freq(double theta, int64_t head_dim) {
  // Python: 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float) / dim)); `1.0 / t` is
  // Tensor.__rtruediv__, i.e. reciprocal() * 1.0.
  at::Tensor exponent = at::arange(0, head_dim, 2, at::TensorOptions().dtype(at::kFloat)) / head_dim;
  return at::reciprocal(at::pow(theta, exponent)) * 1.0;
}

std::pair<at::Tensor, at::Tensor> rotary_cos_sin(const at::Tensor& inv_freq, const at::Tensor& position_ids,
                                                 at::ScalarType dtype) {
  at::Tensor freqs = position_ids.unsqueeze(-1).to(at::kFloat) *
                     inv_freq.to(position_ids.device(), at::kFloat);  // [B, S, hd/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  return {(emb.cos() * 1.0).to(dtype), (emb.sin() * 1.0).to(dtype)};
}

at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  int64_t half = x.size(-1) / 2;
  at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

at::Tensor alibi_bias(const at::Tensor& mask, int64_t heads, at::ScalarType dtype) {
  auto f32 = at::TensorOptions().dtype(at::kFloat).device(mask.device());
  auto i32 = at::TensorOptions().dtype(at::kInt).device(mask.device());
  // The slopes as build_alibi_tensor computes them: powers of a base held in fp32.
  int64_t closest = int64_t{1} << static_cast<int>(std::floor(std::log2(static_cast<double>(heads))));
  double base = std::pow(2.0, -std::pow(2.0, -(std::log2(static_cast<double>(closest)) - 3)));
  at::Tensor slopes = at::pow(at::full({}, base, f32), at::arange(1, 1 + closest, i32));
  if (closest != heads) {
    double extra_base = std::pow(2.0, -std::pow(2.0, -(std::log2(static_cast<double>(2 * closest)) - 3)));
    int64_t remaining = std::min(closest, heads - closest);
    slopes = at::cat({slopes, at::pow(at::full({}, extra_base, f32), at::arange(1, 1 + 2 * remaining, 2, i32))});
  }
  at::Tensor m = mask.to(at::kLong);
  at::Tensor positions = ((m.cumsum(-1) - 1) * m).unsqueeze(1);  // [B, 1, K]
  at::Tensor alibi = slopes.unsqueeze(-1).to(at::kBFloat16) * positions;  // [B, H, K] in bf16
  return alibi.to(dtype).unsqueeze(2);
}

at::Tensor causal_padding_mask(const at::Tensor& mask, int64_t past, int64_t seq) {
  int64_t keys = past + seq;
  auto opts = at::TensorOptions().dtype(at::kLong).device(mask.device());
  at::Tensor q = at::arange(past, keys, opts).unsqueeze(1);  // [S, 1]
  at::Tensor k = at::arange(0, keys, opts).unsqueeze(0);     // [1, K]
  at::Tensor causal = k <= q;                                // [S, K]
  return causal.unsqueeze(0).unsqueeze(0) & mask.to(at::kBool).unsqueeze(1).unsqueeze(1);
}

}  // namespace autotrain::model::ops
