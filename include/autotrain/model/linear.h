// The linear layers of a model. Every projection is held behind a pointer to this interface, so
// that later stages can replace a layer by name (NF4 weights, LoRA adapters) without the model
// knowing: `model.linears()` lists the slots, assigning a new object to a slot swaps the layer.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>

namespace autotrain::model {

class Linear {
 public:
  virtual ~Linear() = default;
  // y = x Wᵀ (+ b) over the last dimension of x.
  virtual at::Tensor forward(const at::Tensor& x) const = 0;
  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
  // The tensors this layer owns, by name relative to the layer ("weight", "bias", "lora_A...")
  // as they appear in checkpoints; pointers stay valid while the layer lives.
  virtual std::vector<std::pair<std::string, at::Tensor*>> named_tensors() = 0;
};

using LinearPtr = std::unique_ptr<Linear>;

// A plain dense layer with weight [out, in] and an optional bias [out].
class DenseLinear final : public Linear {
 public:
  // How the bias is added. Falcon's FalconLinear computes `x @ W.T` and then adds the bias as a
  // separate op (two roundings in low precision); nn.Linear (lm_head) calls the fused linear.
  enum class BiasMode { kSeparateAdd, kFused };

  DenseLinear(int64_t in_features, int64_t out_features, bool has_bias, BiasMode mode = BiasMode::kSeparateAdd)
      : in_(in_features), out_(out_features), has_bias_(has_bias), mode_(mode) {}

  at::Tensor forward(const at::Tensor& x) const override;
  int64_t in_features() const override { return in_; }
  int64_t out_features() const override { return out_; }
  std::vector<std::pair<std::string, at::Tensor*>> named_tensors() override;
  bool has_bias() const { return has_bias_; }

  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out], undefined without bias

 private:
  int64_t in_, out_;
  bool has_bias_;
  BiasMode mode_;
};

// A named place holding a linear layer of the model, e.g. "transformer.h.3.mlp.dense_h_to_4h".
struct LinearSlot {
  std::string name;
  LinearPtr* layer;
};

}  // namespace autotrain::model
