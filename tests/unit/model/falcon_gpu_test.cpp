// The reference models of tests/reference/model/falcon_reference.py (built by transformers on
// the CPU at test time) loaded onto CUDA: the device path must give transformers' numbers too.
// Exits 77 (skipped) without an NVIDIA driver.
#include <cstdlib>
#include <map>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include "autotrain/model/falcon.h"
#include "autotrain/model/loader.h"
#include "autotrain/model/loss.h"
#include "autotrain/safetensors/torch.h"
#include "support/test_support.h"
#include "unit/safetensors/python_oracle.h"

namespace autotrain::model {
namespace {

class FalconCuda : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new autotrain::testing::TempDir();
    auto r = autotrain::testing::run_reference_python("model/falcon_reference.py", {dir_->path().string()});
    ok_ = r.exit_code == 0;
    log_ = r.out + r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static autotrain::testing::TempDir* dir_;
  static bool ok_;
  static std::string log_;
};
autotrain::testing::TempDir* FalconCuda::dir_ = nullptr;
bool FalconCuda::ok_ = false;
std::string FalconCuda::log_;

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kCPU, at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

TEST_F(FalconCuda, AllVariantsMatchTransformers) {
  ASSERT_TRUE(ok_) << log_;
  const at::Device cuda(at::kCUDA, 0);
  for (std::string v : {"7b", "7b-legacy", "40b", "rw1b"}) {
    SCOPED_TRACE(v);
    auto file = safetensors::SafetensorsFile::open(dir_->path() / v / "expected.safetensors");
    std::map<std::string, at::Tensor> e;
    for (const auto& t : file.header().tensors) e[t.name] = safetensors::tensor_view(file, t).clone();
    auto model = load_falcon(dir_->path() / v / "model", LoadOptions{.dtype = at::kFloat, .device = cuda, .on_linear_loaded = {}});
    EXPECT_EQ(model->device(), cuda);
    FalconInputs in;
    in.input_ids = e["input_ids"].to(cuda);
    in.attention_mask = e["attention_mask"].to(cuda);
    {
      at::NoGradGuard no_grad;
      at::Tensor h = model->hidden_states(in);
      EXPECT_LE(max_abs(model->logits(h), e["logits"]), 1e-4);
      double loss = causal_lm_loss(model->lm_head(), h, e["labels"].to(cuda)).loss.item<double>();
      EXPECT_LE(std::abs(loss - e["loss"].item<double>()) / e["loss"].item<double>(), 1e-5);
    }
    at::Tensor emb = model->embed(in.input_ids).detach();
    emb.set_requires_grad(true);
    in.inputs_embeds = emb;
    causal_lm_loss(model->lm_head(), model->hidden_states(in), e["labels"].to(cuda), LossReduction::kMean, 7)
        .loss.backward();
    EXPECT_LE(max_abs(emb.grad(), e["embeds_grad"]), 1e-4);
    at::Tensor p = e["prompt"], g = e["generated"];
    EXPECT_EQ(greedy_generate(*model, std::vector<int64_t>(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + p.numel()), 32),
              std::vector<int64_t>(g.data_ptr<int64_t>(), g.data_ptr<int64_t>() + g.numel()));
    // bf16 weights and activations: close to the fp32 reference loss.
    auto bf16 = load_falcon(dir_->path() / v / "model", LoadOptions{.dtype = at::kBFloat16, .device = cuda, .on_linear_loaded = {}});
    at::NoGradGuard no_grad;
    FalconInputs in16;
    in16.input_ids = in.input_ids;
    in16.attention_mask = in.attention_mask;
    double loss16 = causal_lm_loss(bf16->lm_head(), bf16->hidden_states(in16), e["labels"].to(cuda)).loss.item<double>();
    EXPECT_LE(std::abs(loss16 - e["loss"].item<double>()) / e["loss"].item<double>(), 2e-2);
  }
}

}  // namespace
}  // namespace autotrain::model

#include "support/gpu_test_main.h"
