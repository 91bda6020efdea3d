// Activation checkpointing (gradient checkpointing): run a function without keeping its
// intermediate activations, and run it again during backward to get its gradients, trading
// compute for memory as torch.utils.checkpoint (reentrant) does.
#pragma once

#include <functional>

#include <ATen/Tensor.h>

namespace autotrain::model {

// y = fn(x), recording only x. In backward, fn is re-run on x with the random-number state and
// the autocast state it first ran with (so dropout draws the same mask and matmuls round the
// same way), and its gradients flow into x and into every tensor fn uses that requires grad
// (LoRA weights), exactly as without checkpointing. `fn` must be pure apart from that.
at::Tensor checkpointed(std::function<at::Tensor(const at::Tensor&)> fn, const at::Tensor& x);

}  // namespace autotrain::model
