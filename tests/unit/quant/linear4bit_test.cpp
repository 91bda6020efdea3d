// Linear4bit: forward and input gradient equal a dense layer holding the dequantized weight;
// no weight gradient; the model-level swap keeps embeddings, norms and lm_head; LoRA trains on
// top of a 4-bit base.
#include <gtest/gtest.h>

#include <thread>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <unistd.h>

#include "autotrain/lora/lora.h"
#include "autotrain/model/loader.h"
#include "autotrain/quant/linear4bit.h"

namespace autotrain::quant {
namespace {

TEST(Linear4bit, MatchesDenseWithDequantizedWeight) {
  at::manual_seed(0);
  at::Tensor w = at::randn({48, 64}) * 0.1;
  at::Tensor b = at::randn({48});
  auto layer = Linear4bit::quantize(w, b);
  model::DenseLinear dense(64, 48, true);
  dense.weight = dequantize_nf4(layer->weight());
  dense.bias = b;

  at::Tensor x = at::randn({3, 5, 64}).requires_grad_(true);
  at::Tensor y = layer->forward(x);
  at::Tensor x2 = x.detach().clone().requires_grad_(true);
  at::Tensor y2 = dense.forward(x2);
  EXPECT_TRUE(at::equal(y, y2));
  at::Tensor g = at::randn_like(y);
  auto gx = torch::autograd::grad({y}, {x}, {g})[0];
  auto gx2 = torch::autograd::grad({y2}, {x2}, {g})[0];
  EXPECT_TRUE(at::allclose(gx, gx2, 1e-6, 1e-6));
  EXPECT_EQ(layer->in_features(), 64);
  EXPECT_EQ(layer->out_features(), 48);
  EXPECT_FALSE(layer->weight().packed.requires_grad());
}

// Under autocast the matmul runs in the autocast dtype, and the output comes back in the input's
// dtype, as bitsandbytes' Linear4bit returns it (`.to(inp_dtype)`); the input gradient too.
TEST(Linear4bit, AutocastComputesLowAndReturnsTheInputDtype) {
  at::manual_seed(0);
  auto layer = Linear4bit::quantize(at::randn({48, 64}) * 0.1, at::randn({48}));
  at::Tensor x = at::randn({3, 5, 64}).requires_grad_(true);
  at::Tensor y;
  {
    at::autocast::set_autocast_enabled(at::kCPU, true);
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    y = layer->forward(x);
    at::autocast::set_autocast_enabled(at::kCPU, false);
    at::autocast::clear_cache();
  }
  EXPECT_EQ(y.scalar_type(), at::kFloat);
  // The value is the bf16 product (rounded to bf16, then widened), not an fp32 one.
  at::Tensor w = dequantize_nf4(layer->weight(), at::kBFloat16);
  at::Tensor want = (at::matmul(x.detach().to(at::kBFloat16), w.t()) + layer->named_tensors()[1].second->to(at::kBFloat16)).to(at::kFloat);
  EXPECT_TRUE(at::equal(y.detach(), want));
  auto gx = torch::autograd::grad({y}, {x}, {at::ones_like(y)})[0];
  EXPECT_EQ(gx.scalar_type(), at::kFloat);
}

TEST(Linear4bit, ScratchBufferIsShared) {
  auto a = Linear4bit::quantize(at::randn({32, 64}), at::Tensor());
  auto b = Linear4bit::quantize(at::randn({16, 64}), at::Tensor());
  at::Tensor wa = a->dequantized_scratch(at::kFloat);
  at::Tensor wb = b->dequantized_scratch(at::kFloat);
  EXPECT_EQ(wa.data_ptr(), wb.data_ptr());  // one buffer for all layers
  // ...and for all threads: CUDA runs the backward pass on the autograd engine's device thread.
  void* other_thread = nullptr;
  std::thread([&] { other_thread = b->dequantized_scratch(at::kFloat).data_ptr(); }).join();
  EXPECT_EQ(other_thread, wa.data_ptr());
  EXPECT_EQ(a->memory_bytes(), 32 * 64 / 2 + 32 * 64 / 64 * 4);
}

TEST(Linear4bit, QuantizedTinyFalconTrainsLoraOnTop) {
  model::FalconConfig cfg;
  cfg.vocab_size = 97;
  cfg.hidden_size = 64;
  cfg.num_attention_heads = 4;
  cfg.num_hidden_layers = 2;
  cfg.multi_query = true;
  cfg.parallel_attn = true;
  cfg.ffn_hidden_size = 256;
  auto model = model::random_falcon(cfg, 3);
  model::FalconInputs in;
  in.input_ids = at::randint(0, 97, {2, 9});
  at::Tensor dense_logits;
  {
    at::NoGradGuard ng;
    dense_logits = model->forward(in);
  }
  auto report = quantize_model_linears(*model);
  EXPECT_EQ(report.layers, 8);
  EXPECT_LT(report.nf4_bytes * 6, report.dense_bytes);  // fp32 -> ~4.5 bits per weight
  EXPECT_EQ(dynamic_cast<Linear4bit*>(const_cast<model::Linear*>(&model->lm_head())), nullptr);
  at::Tensor q_logits;
  {
    at::NoGradGuard ng;
    q_logits = model->forward(in);
  }
  // Close to the dense model, not equal to it.
  EXPECT_FALSE(at::equal(q_logits, dense_logits));
  EXPECT_LT((q_logits - dense_logits).abs().max().item<double>(), 0.25 * dense_logits.abs().max().item<double>());

  lora::LoraOptions o;
  o.r = 4;
  o.alpha = 8;
  o.target_modules = "all-linear";
  auto lora = lora::inject_lora(*model, o, 1);
  {
    at::NoGradGuard ng;
    for (auto* l : lora.layers) l->lora_B.normal_(0, 0.01);
  }
  at::Tensor loss = at::cross_entropy_loss(model->forward(in).reshape({-1, 97}), in.input_ids.reshape({-1}));
  auto grads = torch::autograd::grad({loss}, lora.parameters());
  ASSERT_EQ(grads.size(), 16u);
  for (const auto& g : grads) EXPECT_GT(g.abs().sum().item<double>(), 0.0);
}

}  // namespace
}  // namespace autotrain::quant

namespace autotrain::quant {
namespace {

TEST(Linear4bit, QuantizeOnLoadEqualsLoadThenQuantize) {
  model::FalconConfig cfg;
  cfg.vocab_size = 61;
  cfg.hidden_size = 64;
  cfg.num_attention_heads = 4;
  cfg.num_hidden_layers = 2;
  cfg.ffn_hidden_size = 128;
  cfg.bias = true;
  auto source = model::random_falcon(cfg, 9);
  auto dir = std::filesystem::temp_directory_path() / ("autotrain-q4load-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  model::save_falcon(*source, dir,
                     R"({"model_type": "falcon", "vocab_size": 61, "hidden_size": 64, "num_attention_heads": 4,
                         "num_hidden_layers": 2, "ffn_hidden_size": 128, "bias": true, "multi_query": true,
                         "parallel_attn": true, "alibi": false, "new_decoder_architecture": false})");
  auto streamed = load_falcon_nf4(dir, {}, 64, true);
  auto plain = model::load_falcon(dir);
  quantize_model_linears(*plain, 64, true);
  auto a = streamed->linears(), b = plain->linears();
  ASSERT_EQ(a.size(), b.size());
  int quantized = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    auto* qa = dynamic_cast<Linear4bit*>(a[i].layer->get());
    auto* qb = dynamic_cast<Linear4bit*>(b[i].layer->get());
    ASSERT_EQ(qa == nullptr, qb == nullptr) << a[i].name;
    if (!qa) continue;
    ++quantized;
    const Nf4Tensor& wa = qa->weight();
    const Nf4Tensor& wb = qb->weight();
    EXPECT_TRUE(at::equal(wa.packed, wb.packed)) << a[i].name;
    EXPECT_TRUE(at::equal(qa->bias(), qb->bias())) << a[i].name;
    // The statistics too: with double quantization, every part of the nested form.
    ASSERT_TRUE(wa.nested && wb.nested) << a[i].name;
    EXPECT_TRUE(at::equal(wa.nested->codes, wb.nested->codes)) << a[i].name;
    EXPECT_TRUE(at::equal(wa.nested->absmax, wb.nested->absmax)) << a[i].name;
    EXPECT_TRUE(at::equal(wa.nested->code_map, wb.nested->code_map)) << a[i].name;
    EXPECT_EQ(wa.nested->offset, wb.nested->offset) << a[i].name;
    EXPECT_EQ(wa.shape, wb.shape) << a[i].name;
    EXPECT_EQ(wa.dtype, wb.dtype) << a[i].name;
  }
  EXPECT_EQ(quantized, 8);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace autotrain::quant
