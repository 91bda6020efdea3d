// The backward node of checkpointed(): it holds the input and the function, not the activations.
#include "checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

namespace autotrain::model {

namespace {

using torch::autograd::variable_list;

// The generator states a recomputation must start from: the CPU one always (dropout on CPU
// tensors), the device's one when x lives on an accelerator.
struct RngState {
  at::Tensor cpu, device;
  at::Device where = at::kCPU;

  static RngState capture(const at::Device& device) {
    RngState s;
    s.where = device;
    s.cpu = at::detail::getDefaultCPUGenerator().get_state();
    if (!device.is_cpu()) s.device = at::globalContext().defaultGenerator(device).get_state();
    return s;
  }
  void restore() const {
    at::Generator cpu_gen = at::detail::getDefaultCPUGenerator();  // a handle: shares the generator
    cpu_gen.set_state(cpu);
    if (device.defined()) {
      at::Generator device_gen = at::globalContext().defaultGenerator(where);
      device_gen.set_state(device);
    }
  }
};

class CheckpointBackward final : public torch::autograd::Node {
 public:
  CheckpointBackward(std::function<at::Tensor(const at::Tensor&)> fn, at::Tensor input, bool input_requires_grad)
      : fn_(std::move(fn)),
        input_(std::move(input)),
        input_requires_grad_(input_requires_grad),
        rng_(RngState::capture(input_.device())),
        device_type_(input_.device().type()),
        autocast_(at::autocast::is_autocast_enabled(device_type_)),
        autocast_dtype_(at::autocast::get_autocast_dtype(device_type_)) {}

  std::string name() const override { return "autotrain::CheckpointBackward"; }

  variable_list apply(variable_list&& grads) override {
    // Recompute with the forward pass's random and autocast state, then put the caller's
    // generator state back: recomputation must not shift later draws.
    RngState before = RngState::capture(input_.device());
    rng_.restore();
    const bool autocast_before = at::autocast::is_autocast_enabled(device_type_);
    const at::ScalarType dtype_before = at::autocast::get_autocast_dtype(device_type_);
    at::autocast::set_autocast_enabled(device_type_, autocast_);
    at::autocast::set_autocast_dtype(device_type_, autocast_dtype_);

    at::Tensor x = input_.detach().requires_grad_(input_requires_grad_);
    at::Tensor y;
    {
      at::AutoGradMode enable(true);
      y = fn_(x);
    }
    at::autocast::set_autocast_enabled(device_type_, autocast_before);
    at::autocast::set_autocast_dtype(device_type_, dtype_before);
    // Leaving the recomputation's autocast region drops the casts it cached, as leaving an outer
    // torch.autocast does: they are casts of the weights as they are now (the LoRA weights, in
    // place, are about to change), and a later forward pass would otherwise be served them.
    if (autocast_ && !autocast_before) at::autocast::clear_cache();
    before.restore();

    if (y.requires_grad()) torch::autograd::backward({y}, {grads.at(0)});
    fn_ = nullptr;  // frees what the closure holds (rotary tables, masks) as soon as possible
    input_ = at::Tensor();
    if (!input_requires_grad_) return {};
    at::Tensor g = x.grad();
    return {g.defined() ? g : at::zeros_like(x)};
  }

 private:
  std::function<at::Tensor(const at::Tensor&)> fn_;
  at::Tensor input_;
  bool input_requires_grad_;
  RngState rng_;
  at::DeviceType device_type_;
  bool autocast_;
  at::ScalarType autocast_dtype_;
};

}  // namespace

at::Tensor checkpointed(std::function<at::Tensor(const at::Tensor&)> fn, const at::Tensor& x) {
  const bool x_requires_grad = x.requires_grad();
  auto node = std::shared_ptr<CheckpointBackward>(new CheckpointBackward(fn, x.detach(), x_requires_grad),
                                                  torch::autograd::deleteNode);
  at::Tensor y;
  {
    at::NoGradGuard no_grad;
    y = fn(x);
  }
  if (x_requires_grad) node->set_next_edges(torch::autograd::collect_next_edges(x));
  torch::autograd::set_history(y, node);
  return y;
}

}  // namespace autotrain::model
