// Gradient checkpointing changes memory, not results: the same loss and the same LoRA and input
// gradients with and without it, dropout included (the recomputation replays the forward pass's
// random draws), and the generator ends in the same state; under autocast too, over two steps with
// an in-place update between them (a recomputation's cached casts must not outlive it).
#include <optional>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "autotrain/lora/lora.h"
#include "autotrain/model/loader.h"
#include "autotrain/model/loss.h"

namespace autotrain::model {
namespace {

struct Outcome {
  double loss;
  std::vector<at::Tensor> grads;
  at::Tensor rng_after;
};

// Two training steps: forward (under autocast when asked, entered and left around the forward
// only, as the trainer does), backward, an in-place update of the LoRA weights as an optimizer
// makes; the outcome is the second step's.
Outcome run(bool checkpointing, std::optional<at::ScalarType> autocast = std::nullopt) {
  FalconConfig cfg;
  cfg.vocab_size = 97;
  cfg.hidden_size = 32;
  cfg.num_hidden_layers = 3;
  cfg.num_attention_heads = 4;
  cfg.num_kv_heads = 1;
  cfg.ffn_hidden_size = 128;
  auto model = random_falcon(cfg, 7);
  lora::LoraOptions o;
  o.r = 4;
  o.dropout = 0.2;
  o.target_modules = "all-linear";
  auto lora = lora::inject_lora(*model, o, 11);
  for (auto* l : lora.layers) l->set_training(true);
  model->set_gradient_checkpointing(checkpointing);

  at::manual_seed(123);
  at::Tensor ids = at::randint(0, 97, {2, 16}, at::TensorOptions().dtype(at::kLong));
  auto step = [&] {
    FalconInputs in;
    in.input_ids = ids;
    if (autocast) {
      at::autocast::set_autocast_dtype(at::kCPU, *autocast);
      at::autocast::set_autocast_enabled(at::kCPU, true);
    }
    auto out = causal_lm_loss(model->lm_head(), model->hidden_states(in), ids, LossReduction::kMean);
    if (autocast) {
      at::autocast::set_autocast_enabled(at::kCPU, false);
      at::autocast::clear_cache();
    }
    torch::autograd::backward({out.loss});
    return out.loss.item<double>();
  };
  step();
  {
    at::NoGradGuard no_grad;
    for (auto& p : lora.parameters()) {
      p.sub_(p.grad().sign() * 0.05);
      p.mutable_grad() = at::Tensor();
    }
  }
  Outcome r;
  r.loss = step();
  for (auto& p : lora.parameters()) r.grads.push_back(p.grad().clone());
  r.rng_after = at::detail::getDefaultCPUGenerator().get_state();
  return r;
}

void expect_same(const Outcome& plain, const Outcome& recomputed) {
  EXPECT_EQ(plain.loss, recomputed.loss);
  ASSERT_EQ(plain.grads.size(), recomputed.grads.size());
  ASSERT_FALSE(plain.grads.empty());
  for (size_t i = 0; i < plain.grads.size(); ++i) {
    EXPECT_TRUE(at::allclose(plain.grads[i], recomputed.grads[i], 0, 1e-7)) << "parameter " << i;
  }
  EXPECT_GT(plain.grads.back().abs().sum().item<double>(), 0);
  EXPECT_TRUE(at::equal(plain.rng_after, recomputed.rng_after));
}

TEST(GradientCheckpointing, SameLossGradientsAndRandomState) { expect_same(run(false), run(true)); }

TEST(GradientCheckpointing, SameUnderAutocastAfterAnUpdate) {
  // The recomputation runs under autocast, which caches the low-precision casts of the LoRA
  // weights; a cache left behind would feed the next forward pass the weights before the update.
  expect_same(run(false, at::kBFloat16), run(true, at::kBFloat16));
  expect_same(run(false, at::kHalf), run(true, at::kHalf));
}

}  // namespace
}  // namespace autotrain::model
