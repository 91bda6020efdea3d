// The optimizer side of the trainer against torch and transformers (tests/reference/train/
// optim_reference.py): learning-rate schedules, gradient clipping, AdamW; the fp16 loss scaler's
// rules; HF Trainer's step arithmetic.
#include <cmath>
#include <fstream>
#include <limits>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/torch.h"
#include "autotrain/train/adamw.h"
#include "autotrain/train/loss_scaler.h"
#include "autotrain/train/schedule.h"
#include "support/reference_run.h"
#include "unit/train/adamw_torch_check.h"
#include "../src/train/checkpoint_io.h"  // private to the train module: its tests reach in

namespace autotrain::train {
namespace {

const testing::ReferenceRun& oracle() {
  static testing::ReferenceRun run("train/optim_reference.py", {});
  return run;
}

class Optim : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!oracle().have_python()) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest (scripts/test.sh)";
    ASSERT_TRUE(oracle().ok()) << oracle().log();
  }
};

TEST_F(Optim, SchedulesMatchTransformers) {
  auto ref = nlohmann::json::parse(testing::read_file(oracle().dir() / "schedules.json"));
  ASSERT_EQ(ref.size(), 6u) << "one curve per schedule: " << ref.dump();
  for (const char* name : {"linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial"})
    ASSERT_TRUE(ref.contains(name)) << name;
  for (const auto& [name, factors] : ref.items()) {
    Schedule s = parse_schedule(name);
    const double peak = name == "polynomial" ? 2e-4 : 1.0;
    ASSERT_EQ(factors.size(), 37u);
    for (int64_t step = 0; step < 37; ++step)
      EXPECT_NEAR(lr_factor(s, step, 5, 37, peak), factors[static_cast<size_t>(step)].get<double>(), 1e-12)
          << name << " step " << step;
  }
  // polynomial ends at an absolute 1e-7: at a peak of 2e-4 its last factors are not linear's.
  EXPECT_GT(lr_factor(Schedule::kPolynomial, 36, 5, 37, 2e-4), lr_factor(Schedule::kLinear, 36, 5, 37));
  EXPECT_THROW(parse_schedule("inverse_sqrt"), std::invalid_argument);
}

class AdamWPath : public Optim, public ::testing::WithParamInterface<bool> {};

TEST_P(AdamWPath, ClippingAndAdamWMatchTorch) {
  // Both paths: the single-tensor formula, and LibTorch's fused kernel (the default, on the CPU as
  // on CUDA; optim_gpu_test runs it on CUDA).
  expect_adamw_matches_torch(oracle(), at::Device(at::kCPU), GetParam());
}

INSTANTIATE_TEST_SUITE_P(SingleTensorAndFused, AdamWPath, ::testing::Bool());

TEST(LossScaler, OverflowSkipsAndBacksOffGoodStepsGrow) {
  DynamicLossScaler scaler(true, {}, 2.0, 0.5, /*growth_interval=*/3);
  EXPECT_DOUBLE_EQ(scaler.state().scale, 65536.0);
  EXPECT_DOUBLE_EQ(scaler.scale_loss(at::full({}, 2.0)).item<double>(), 131072.0);

  at::Tensor g = at::full({4}, 65536.0);
  EXPECT_FALSE(scaler.unscale_and_check({g}));
  EXPECT_TRUE(at::equal(g, at::ones({4})));  // divided by the scale in place

  at::Tensor bad = at::tensor({1.0f, std::numeric_limits<float>::infinity()});
  EXPECT_TRUE(scaler.unscale_and_check({g, bad}));
  scaler.update(true);
  EXPECT_DOUBLE_EQ(scaler.state().scale, 32768.0);
  EXPECT_EQ(scaler.state().skipped_steps, 1);
  at::Tensor nan = at::tensor({std::nanf("")});
  EXPECT_TRUE(scaler.unscale_and_check({nan}));

  for (int i = 0; i < 2; ++i) scaler.update(false);
  EXPECT_DOUBLE_EQ(scaler.state().scale, 32768.0);
  scaler.update(false);  // third good step in a row
  EXPECT_DOUBLE_EQ(scaler.state().scale, 65536.0);
  EXPECT_EQ(scaler.state().growth_tracker, 0);
  scaler.update(false);
  scaler.update(true);  // an overflow resets the count toward growth
  EXPECT_EQ(scaler.state().growth_tracker, 0);
  EXPECT_EQ(scaler.state().skipped_steps, 2);

  DynamicLossScaler off(false);
  at::Tensor inf = at::tensor({std::numeric_limits<float>::infinity()});
  EXPECT_FALSE(off.unscale_and_check({inf}));
  EXPECT_DOUBLE_EQ(off.scale_loss(at::full({}, 2.0)).item<double>(), 2.0);
}

// The same sequence of good and overflowing steps through torch.amp.GradScaler (scaler.json):
// after every step, the same overflow verdict, scale and growth tracker.
TEST_F(Optim, LossScalerFollowsTorchsGradScaler) {
  auto rows = nlohmann::json::parse(testing::read_file(oracle().dir() / "scaler.json"));
  ASSERT_GE(rows.size(), 10u);
  DynamicLossScaler scaler(true, {}, 2.0, 0.5, /*growth_interval=*/3);
  int64_t overflows = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "step " << i);
    const double scale = scaler.state().scale;
    at::Tensor g = at::tensor({1.0f, 2.0f}) * scale;  // the gradient of a scaled loss
    if (rows[i]["overflow"].get<bool>()) g[1] = std::numeric_limits<float>::infinity();
    const bool found = scaler.unscale_and_check({g});
    EXPECT_EQ(found, rows[i]["found_inf"].get<bool>());
    scaler.update(found);
    overflows += found;
    EXPECT_DOUBLE_EQ(scaler.state().scale, rows[i]["scale"].get<double>());
    EXPECT_EQ(scaler.state().growth_tracker, rows[i]["growth_tracker"].get<int64_t>());
  }
  EXPECT_EQ(scaler.state().skipped_steps, overflows);
}

TEST(StepPlan, FollowsTheTrainersArithmetic) {
  // The tutorial's shape (autotrain-behaviour.md §2.7): batch 1, accumulation 4, 4 epochs.
  StepPlan p = plan_steps(/*train_blocks=*/1003, /*valid_blocks=*/0, 1, 4, 4, -1, 0.1, 0, -1);
  EXPECT_EQ(p.steps_per_epoch, 250);
  EXPECT_EQ(p.total_steps, 1000);
  EXPECT_EQ(p.warmup_steps, 100);
  EXPECT_EQ(p.logging_steps, 200);  // int(0.2 * 1003): 0.6.44 has no clamp (HEAD's [1, 25] came later)
  EXPECT_EQ(p.epochs, 4);
  StepPlan small = plan_steps(10, 20, 4, 8, 3, -1, 0.1, 0, -1);
  EXPECT_EQ(small.micro_batches_per_epoch, 3);
  EXPECT_EQ(small.micro_batches_per_step, 3);  // fewer micro-batches than the accumulation
  EXPECT_EQ(small.steps_per_epoch, 1);
  EXPECT_EQ(small.logging_steps, 1);  // int(0.2 * 20 / 4)
  StepPlan capped = plan_steps(100, 0, 2, 1, 5, 7, 0.0, 3, 10);
  EXPECT_EQ(capped.total_steps, 7);
  EXPECT_EQ(capped.warmup_steps, 3);
  EXPECT_EQ(capped.epochs, 1);
  EXPECT_EQ(capped.logging_steps, 10);
}

// HF Trainer 4.34 (the tutorial's) stepped whenever the run's micro-batch count reached a multiple
// of the accumulation: micro-batches left over at an epoch's end open the next epoch's first
// step, epochs end between steps (evaluation and checkpoint with the last full step's weights),
// and state.epoch is micro-batches done / micro-batches per epoch.
TEST(StepPlan, MicroBatchesCountAcrossEpochsAsTheTrainerDid) {
  // 358 blocks, batch 1, accumulation 4 (the tiny default's shape at the tutorial's settings).
  StepPlan p = plan_steps(358, 0, 1, 4, 4, -1, 0.1, 0, -1);
  EXPECT_EQ(p.steps_per_epoch, 89);
  EXPECT_EQ(p.total_steps, 356);
  auto refs = [&](int64_t step) {
    std::vector<std::pair<int64_t, int64_t>> out;
    for (const auto& r : micro_batches_of_step(p, step)) out.emplace_back(r.epoch, r.index);
    return out;
  };
  using V = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(refs(0), (V{{0, 0}, {0, 1}, {0, 2}, {0, 3}}));
  EXPECT_EQ(refs(88), (V{{0, 352}, {0, 353}, {0, 354}, {0, 355}}));
  EXPECT_EQ(refs(89), (V{{0, 356}, {0, 357}, {1, 0}, {1, 1}}));  // the two left over open step 90
  std::vector<int64_t> ends;
  for (int64_t s = 1; s <= p.total_steps; ++s)
    if (epoch_ends_at(p, s)) ends.push_back(s);
  EXPECT_EQ(ends, (std::vector<int64_t>{89, 179, 268}));  // and the run's end, 356
  EXPECT_DOUBLE_EQ(epoch_after(p, 89), 356.0 / 358.0);
  EXPECT_DOUBLE_EQ(epoch_after(p, 90), 360.0 / 358.0);
  EXPECT_DOUBLE_EQ(epoch_after(p, 356), 1424.0 / 358.0);
  EXPECT_EQ(epoch_after(p, 0), 0.0);
  // An epoch of fewer micro-batches than the accumulation (3 at 4): HF 4.34 also stepped at each
  // epoch's end (is_last_step_and_steps_less_than_grad_acc), so steps of 3, 1, 2, 2 micro-batches,
  // and max_steps = epochs (4) ends the run a third into epoch 3.
  StepPlan small = plan_steps(12, 0, 4, 4, 4, -1, 0.1, 0, -1);
  EXPECT_EQ(small.total_steps, 4);
  std::vector<size_t> sizes;
  for (int64_t s = 0; s < small.total_steps; ++s) sizes.push_back(micro_batches_of_step(small, s).size());
  EXPECT_EQ(sizes, (std::vector<size_t>{3, 1, 2, 2}));
  EXPECT_EQ(micro_batches_of_step(small, 1).front().epoch, 1);
  EXPECT_TRUE(epoch_ends_at(small, 1));
  EXPECT_FALSE(epoch_ends_at(small, 2));
  EXPECT_TRUE(epoch_ends_at(small, 3));
  EXPECT_DOUBLE_EQ(epoch_after(small, 2), 4.0 / 3.0);
  EXPECT_DOUBLE_EQ(epoch_after(small, 4), 8.0 / 3.0);
  // Equal counts: one whole epoch per step.
  StepPlan same = plan_steps(16, 0, 4, 4, 3, -1, 0.1, 0, -1);
  EXPECT_EQ(micro_batches_of_step(same, 2).size(), 4u);
  EXPECT_EQ(micro_batches_of_step(same, 2).front().epoch, 2);
  EXPECT_TRUE(epoch_ends_at(same, 1));
  EXPECT_DOUBLE_EQ(epoch_after(same, 3), 3.0);
  // No leftover: steps and epochs line up.
  StepPlan even = plan_steps(40, 0, 2, 2, 2, -1, 0.0, 0, -1);
  EXPECT_DOUBLE_EQ(epoch_after(even, 5), 0.5);
  EXPECT_TRUE(epoch_ends_at(even, 10));
  EXPECT_FALSE(epoch_ends_at(even, 9));
  EXPECT_EQ(micro_batches_of_step(even, 10).front().epoch, 1);
}

// A checkpoint that cannot be written (a full disk, a quota) leaves no half-written
// checkpoint-N.tmp holding the space, and no checkpoint-N.
TEST(SaveCheckpoint, AFailedWriteLeavesNothingBehind) {
  testing::TempDir dir;
  at::Tensor w = at::zeros({4});
  AdamW opt({w}, {true});
  auto full_disk = [](const std::filesystem::path& d) {
    std::ofstream(d / "adapter_model.safetensors") << "partial";
    throw std::runtime_error("cannot write adapter_model.safetensors: No space left on device");
  };
  EXPECT_THROW(save_checkpoint(dir.path(), 3, full_disk, {w}, opt, at::Device(at::kCPU), nlohmann::json::object(), 0),
               std::runtime_error);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "checkpoint-3.tmp"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "checkpoint-3"));
}

}  // namespace
}  // namespace autotrain::train
