// A frozen 4-bit linear layer: NF4 weight (+ optional bias) behind the model::Linear interface.
// Forward dequantizes into a per-device scratch buffer reused by every layer, then runs one
// matmul in the compute dtype (the input's, or the autocast dtype when autocast is on), returned
// in the input's dtype as bitsandbytes' Linear4bit returns it; backward
// gives the input gradient only, dequantizing again, so no dequantized weight outlives its matmul
// (bitsandbytes' MatMul4Bit, falcon-qlora-spec.md §3.4).
#pragma once

#include <memory>
#include <string>

#include "autotrain/model/falcon.h"
#include "autotrain/model/loader.h"
#include "autotrain/model/linear.h"
#include "autotrain/quant/nf4.h"

namespace autotrain::quant {

class Linear4bit final : public model::Linear {
 public:
  Linear4bit(Nf4Tensor weight, at::Tensor bias);
  // Quantizes a dense [out, in] weight.
  static std::unique_ptr<Linear4bit> quantize(const at::Tensor& weight, const at::Tensor& bias,
                                              int64_t blocksize = kNf4DefaultBlocksize, bool double_quant = false);

  at::Tensor forward(const at::Tensor& x) const override;
  int64_t in_features() const override { return weight_.shape.at(1); }
  int64_t out_features() const override { return weight_.shape.at(0); }
  // "weight" is the packed uint8 tensor (two parameters per byte), then "bias" if any.
  std::vector<std::pair<std::string, at::Tensor*>> named_tensors() override;

  const Nf4Tensor& weight() const { return weight_; }
  const at::Tensor& bias() const { return bias_; }
  // The dequantized weight in `dtype` on the weight's device, in the shared scratch buffer: valid
  // until the next call for the same device and dtype.
  at::Tensor dequantized_scratch(at::ScalarType dtype) const;
  // Device memory held: packed weight + statistics (+ bias).
  int64_t memory_bytes() const;

 private:
  Nf4Tensor weight_;
  at::Tensor bias_;
};

struct QuantizeReport {
  int64_t layers = 0;
  int64_t dense_bytes = 0;  // what the replaced weights took
  int64_t nf4_bytes = 0;    // what they take now
};

// Replaces every linear layer of the transformer body with a Linear4bit (embeddings, norms and
// lm_head stay as they are, as transformers + bitsandbytes do), freeing each dense weight as soon
// as it is quantized.
QuantizeReport quantize_model_linears(model::FalconForCausalLM& model, int64_t blocksize = kNf4DefaultBlocksize,
                                      bool double_quant = false);

// Loads a 16/32-bit checkpoint quantizing every body linear as soon as its tensors are read
// (USE_INT4): on the target device when it is CUDA; memory peaks near the final 4-bit size plus
// one dense layer. Embeddings, norms and lm_head are kept in options.dtype.
std::unique_ptr<model::FalconForCausalLM> load_falcon_nf4(const std::filesystem::path& dir,
                                                          model::LoadOptions options,
                                                          int64_t blocksize = kNf4DefaultBlocksize,
                                                          bool double_quant = false);

}  // namespace autotrain::quant
