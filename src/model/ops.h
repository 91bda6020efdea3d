// Small tensor functions of the Falcon forward pass, each written with the same ops, in the
// same order and dtypes, as transformers (spec §1.3), so that results match to the last bits
// where the kernels are the same.
#pragma once

#include <ATen/Tensor.h>

namespace autotrain::model::ops {

// inv_freq = 1 / theta^(arange(0, head_dim, 2) / head_dim), fp32 on the CPU.
at::Tensor rotary_inv_freq(double theta, int64_t head_dim);

// cos and sin tables for `position_ids` [B, S]: [B, S, head_dim], computed in fp32 and then
// cast to `dtype` (the activation dtype).
std::pair<at::Tensor, at::Tensor> rotary_cos_sin(const at::Tensor& inv_freq, const at::Tensor& position_ids,
                                                 at::ScalarType dtype);

// x * cos + rotate_half(x) * sin, with x [B, heads, S, head_dim] and cos/sin [B, S, head_dim].
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// ALiBi bias [B, heads, 1, K] from a 0/1 mask [B, K] (build_alibi_tensor: slopes rounded to
// bf16, product in bf16, then cast to `dtype`).
at::Tensor alibi_bias(const at::Tensor& mask, int64_t heads, at::ScalarType dtype);

// Boolean attention mask [B, 1, S, past + S], true = may attend: causal (query i sees keys up to
// past + i) and not padding (`mask` [B, past + S], 1 = token).
at::Tensor causal_padding_mask(const at::Tensor& mask, int64_t past, int64_t seq);

}  // namespace autotrain::model::ops
