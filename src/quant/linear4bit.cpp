#include "autotrain/quant/linear4bit.h"

#include <map>
#include <mutex>
#include <stdexcept>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/custom_function.h>

namespace autotrain::quant {

namespace {

// One scratch buffer per (device, dtype) for the whole process, grown to the largest weight seen.
// Layers run one after another, so a single buffer serves the whole model, forward and backward;
// on CUDA the backward pass runs on the autograd engine's device thread, so a per-thread buffer
// would hold a second copy (165 MB in fp16 for Falcon-7B's largest layer). Nf4MatMul holds the
// lock from dequantization to the matmul's launch; CUDA orders the kernels on the stream.
struct ScratchBuffers {
  std::recursive_mutex mutex;
  std::map<std::pair<std::string, int>, at::Tensor> buffers;
};
ScratchBuffers& scratch_buffers() {
  static ScratchBuffers s;
  return s;
}

at::Tensor scratch(const at::Device& device, at::ScalarType dtype, int64_t numel) {
  auto& s = scratch_buffers();
  std::lock_guard lock(s.mutex);
  auto& buf = s.buffers[{device.str(), static_cast<int>(dtype)}];
  if (!buf.defined() || buf.numel() < numel)
    buf = at::empty({numel}, at::TensorOptions().dtype(dtype).device(device));
  return buf.narrow(0, 0, numel);
}

at::ScalarType compute_dtype(const at::Tensor& x) {
  const auto device_type = x.device().type();
  if (at::autocast::is_autocast_enabled(device_type)) return at::autocast::get_autocast_dtype(device_type);
  return x.scalar_type();
}

// y = x Wᵀ with W dequantized on the fly; dW is never computed (the weight is frozen).
struct Nf4MatMul : public torch::autograd::Function<Nf4MatMul> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t layer_address) {
    ctx->saved_data["layer"] = layer_address;
    const auto* layer = reinterpret_cast<const Linear4bit*>(layer_address);
    const at::ScalarType dtype = compute_dtype(x);
    std::lock_guard lock(scratch_buffers().mutex);
    at::Tensor w = layer->dequantized_scratch(dtype);
    return at::matmul(x.to(dtype), w.t());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto* layer = reinterpret_cast<const Linear4bit*>(ctx->saved_data["layer"].toInt());
    const at::Tensor& g = grads[0];
    std::lock_guard lock(scratch_buffers().mutex);
    at::Tensor w = layer->dequantized_scratch(g.scalar_type());
    return {at::matmul(g, w), at::Tensor()};
  }
};

int64_t bytes_of(const at::Tensor& t) { return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0; }

}  // namespace

Linear4bit::Linear4bit(Nf4Tensor weight, at::Tensor bias) : weight_(std::move(weight)), bias_(std::move(bias)) {
  if (weight_.shape.size() != 2)
    throw std::invalid_argument(fmt::format("Linear4bit needs a 2-D weight, got {} dimensions", weight_.shape.size()));
  if (bias_.defined()) bias_ = bias_.detach();
}

std::unique_ptr<Linear4bit> Linear4bit::quantize(const at::Tensor& weight, const at::Tensor& bias, int64_t blocksize,
                                                 bool double_quant) {
  return std::make_unique<Linear4bit>(quantize_nf4(weight.detach(), blocksize, double_quant), bias);
}

at::Tensor Linear4bit::dequantized_scratch(at::ScalarType dtype) const {
  at::Tensor buf = scratch(weight_.packed.device(), dtype, weight_.numel());
  dequantize_nf4_into(weight_, buf);
  return buf.view(weight_.shape);
}

at::Tensor Linear4bit::forward(const at::Tensor& x) const {
  at::Tensor y = Nf4MatMul::apply(x, reinterpret_cast<int64_t>(this));
  if (bias_.defined()) y = y + bias_.to(y.scalar_type());
  // bitsandbytes' Linear4bit returns the input's dtype (`.to(inp_dtype)`): under fp16 autocast
  // with QLoRA's fp32 hidden states, its output is fp32, and so are PEFT's base + LoRA sum and
  // what Falcon adds after it. The cast is outside Nf4MatMul, so its backward still gets the
  // compute dtype.
  return y.to(x.scalar_type());
}

std::vector<std::pair<std::string, at::Tensor*>> Linear4bit::named_tensors() {
  std::vector<std::pair<std::string, at::Tensor*>> out = {{"weight", &weight_.packed}};
  if (bias_.defined()) out.emplace_back("bias", &bias_);
  return out;
}

int64_t Linear4bit::memory_bytes() const { return weight_.packed_bytes() + weight_.statistics_bytes() + bytes_of(bias_); }

QuantizeReport quantize_model_linears(model::FalconForCausalLM& model, int64_t blocksize, bool double_quant) {
  QuantizeReport report;
  for (auto& slot : model.linears()) {
    if (slot.name == "lm_head") continue;
    auto* dense = dynamic_cast<model::DenseLinear*>(slot.layer->get());
    if (!dense) continue;  // already quantized, or wrapped
    report.dense_bytes += bytes_of(dense->weight);
    auto q = Linear4bit::quantize(dense->weight, dense->has_bias() ? dense->bias : at::Tensor(), blocksize, double_quant);
    report.nf4_bytes += q->memory_bytes() - bytes_of(q->bias());
    *slot.layer = std::move(q);  // frees the dense weight now
    ++report.layers;
  }
  return report;
}

std::unique_ptr<model::FalconForCausalLM> load_falcon_nf4(const std::filesystem::path& dir,
                                                          model::LoadOptions options, int64_t blocksize,
                                                          bool double_quant) {
  options.on_linear_loaded = [&](const std::string&, model::LinearPtr& slot) {
    auto* dense = dynamic_cast<model::DenseLinear*>(slot.get());
    if (!dense) return;
    slot = Linear4bit::quantize(dense->weight, dense->has_bias() ? dense->bias : at::Tensor(), blocksize, double_quant);
  };
  return model::load_falcon(dir, options);
}

}  // namespace autotrain::quant
