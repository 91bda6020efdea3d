// The optimizer side of the trainer on CUDA (label gpu): AdamW's default, LibTorch's fused
// kernel (its step tensors must carry this step's number), with gradient clipping, against the
// values torch.optim.AdamW produced (tests/reference/train/optim_reference.py); the fp16 loss
// scaler's unscale and inf/nan check on device gradients. Exits 77 (skipped) without an NVIDIA driver.
#include <limits>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "autotrain/train/loss_scaler.h"
#include "support/reference_run.h"
#include "unit/train/adamw_torch_check.h"

namespace autotrain::train {
namespace {

const at::Device kCuda(at::kCUDA, 0);

TEST(OptimCuda, FusedAdamWWithClippingMatchesTorch) {
  static testing::ReferenceRun oracle("train/optim_reference.py", {});
  if (!oracle.have_python()) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest";
  ASSERT_TRUE(oracle.ok()) << oracle.log();
  expect_adamw_matches_torch(oracle, kCuda, /*fused=*/true);
}

TEST(OptimCuda, LossScalerUnscalesAndFindsOverflowOnTheDevice) {
  DynamicLossScaler scaler(true);
  at::Tensor g = at::full({1000}, 65536.0f, at::TensorOptions().device(kCuda));
  at::Tensor h = at::full({3}, -131072.0f, at::TensorOptions().device(kCuda));
  EXPECT_FALSE(scaler.unscale_and_check({g, h}));
  EXPECT_TRUE(at::equal(g.cpu(), at::ones({1000})));
  EXPECT_TRUE(at::equal(h.cpu(), at::full({3}, -2.0f)));
  for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    at::Tensor x = at::ones({4096}, at::TensorOptions().device(kCuda));
    x[4000] = bad;
    EXPECT_TRUE(scaler.unscale_and_check({g, x})) << bad;
  }
  scaler.update(true);
  EXPECT_DOUBLE_EQ(scaler.state().scale, 32768.0);
  EXPECT_EQ(scaler.state().skipped_steps, 1);
}

}  // namespace
}  // namespace autotrain::train

#include "support/gpu_test_main.h"
