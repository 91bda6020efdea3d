// Gradient checkpointing changes memory, not results: the same loss and the same LoRA and input
// gradients with and without it, dropout included (the recomputation replays the forward pass's
// random draws), and the generator ends in the same state.
#include <ATen/ATen.h>
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

Outcome run(bool checkpointing) {
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
  FalconInputs in;
  in.input_ids = ids;
  auto out = causal_lm_loss(model->lm_head(), model->hidden_states(in), ids, LossReduction::kMean);
  torch::autograd::backward({out.loss});
  Outcome r;
  r.loss = out.loss.item<double>();
  for (auto& p : lora.parameters()) r.grads.push_back(p.grad().clone());
  r.rng_after = at::detail::getDefaultCPUGenerator().get_state();
  return r;
}

TEST(GradientCheckpointing, SameLossGradientsAndRandomState) {
  Outcome plain = run(false), recomputed = run(true);
  EXPECT_EQ(plain.loss, recomputed.loss);
  ASSERT_EQ(plain.grads.size(), recomputed.grads.size());
  ASSERT_FALSE(plain.grads.empty());
  for (size_t i = 0; i < plain.grads.size(); ++i) {
    EXPECT_TRUE(at::allclose(plain.grads[i], recomputed.grads[i], 0, 1e-7)) << "parameter " << i;
  }
  EXPECT_GT(plain.grads.back().abs().sum().item<double>(), 0);
  EXPECT_TRUE(at::equal(plain.rng_after, recomputed.rng_after));
}

}  // namespace
}  // namespace autotrain::model
