// The Falcon decoder. Comments name the transformers code each step mirrors; the order of
// operations matters because every op rounds in the activation dtype.
#include "autotrain/model/falcon.h"

#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <fmt/format.h>

#include "checkpoint.h"
#include "ops.h"

namespace autotrain::model {

at::Tensor DenseLinear::forward(const at::Tensor& x) const {
  if (mode_ == BiasMode::kFused) return at::linear(x, weight, has_bias_ ? bias : at::Tensor());
  // FalconLinear: `input @ self.weight.T`, then `+ self.bias` as a separate op.
  at::Tensor h = at::matmul(x, weight.t());
  return has_bias_ ? h + bias : h;
}

std::vector<std::pair<std::string, at::Tensor*>> DenseLinear::named_tensors() {
  std::vector<std::pair<std::string, at::Tensor*>> out = {{"weight", &weight}};
  if (has_bias_) out.emplace_back("bias", &bias);
  return out;
}

at::Tensor LayerNorm::forward(const at::Tensor& x) const {
  return at::layer_norm(x, {x.size(-1)}, weight, bias, eps);
}

std::vector<ParamSpec> falcon_parameter_specs(const FalconConfig& c) {
  const int64_t h = c.hidden_size;
  std::vector<ParamSpec> out;
  out.push_back({"transformer.word_embeddings.weight", {c.vocab_size, h}, ParamSpec::kEmbedding});
  auto norm = [&](const std::string& name) {
    out.push_back({name + ".weight", {h}, ParamSpec::kNormWeight});
    out.push_back({name + ".bias", {h}, ParamSpec::kNormBias});
  };
  auto linear = [&](const std::string& name, int64_t in, int64_t outf) {
    out.push_back({name + ".weight", {outf, in}, ParamSpec::kLinearWeight});
    if (c.bias) out.push_back({name + ".bias", {outf}, ParamSpec::kLinearBias});
  };
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    std::string p = fmt::format("transformer.h.{}.", i);
    if (c.two_layer_norms()) {
      norm(p + "ln_attn");
      norm(p + "ln_mlp");
    } else {
      norm(p + "input_layernorm");
      if (!c.parallel_attn) norm(p + "post_attention_layernorm");
    }
    linear(p + "self_attention.query_key_value", h, c.qkv_out_features());
    linear(p + "self_attention.dense", h, h);
    linear(p + "mlp.dense_h_to_4h", h, c.ffn_hidden_size);
    linear(p + "mlp.dense_4h_to_h", c.ffn_hidden_size, h);
  }
  norm("transformer.ln_f");
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, h}, ParamSpec::kLinearWeight});
  return out;
}

FalconForCausalLM::FalconForCausalLM(FalconConfig cfg, const at::Device& device) : cfg_(std::move(cfg)) {
  const int64_t h = cfg_.hidden_size;
  for (int64_t i = 0; i < cfg_.num_hidden_layers; ++i) {
    Layer l;
    for (LayerNorm* n : {&l.input_layernorm, &l.post_attention_layernorm, &l.ln_attn, &l.ln_mlp})
      n->eps = cfg_.layer_norm_epsilon;
    l.query_key_value = std::make_unique<DenseLinear>(h, cfg_.qkv_out_features(), cfg_.bias);
    l.dense = std::make_unique<DenseLinear>(h, h, cfg_.bias);
    l.dense_h_to_4h = std::make_unique<DenseLinear>(h, cfg_.ffn_hidden_size, cfg_.bias);
    l.dense_4h_to_h = std::make_unique<DenseLinear>(cfg_.ffn_hidden_size, h, cfg_.bias);
    layers_.push_back(std::move(l));
  }
  ln_f_.eps = cfg_.layer_norm_epsilon;
  // lm_head is a plain nn.Linear(bias=False) in transformers, not a FalconLinear.
  lm_head_ = std::make_unique<DenseLinear>(h, cfg_.vocab_size, false, DenseLinear::BiasMode::kFused);
  tied_ = cfg_.tie_word_embeddings;
  if (!cfg_.alibi) inv_freq_ = ops::rotary_inv_freq(cfg_.rope_theta, cfg_.head_dim()).to(device);
}

std::vector<std::pair<std::string, at::Tensor*>> FalconForCausalLM::named_parameters() {
  std::vector<std::pair<std::string, at::Tensor*>> out = {{"transformer.word_embeddings.weight", &word_embeddings_}};
  auto norm = [&](const std::string& name, LayerNorm& n) {
    out.emplace_back(name + ".weight", &n.weight);
    out.emplace_back(name + ".bias", &n.bias);
  };
  auto linear = [&](const std::string& name, LinearPtr& l) {
    for (auto& [suffix, t] : l->named_tensors()) out.emplace_back(name + "." + suffix, t);
  };
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = layers_[i];
    std::string p = fmt::format("transformer.h.{}.", i);
    if (cfg_.two_layer_norms()) {
      norm(p + "ln_attn", l.ln_attn);
      norm(p + "ln_mlp", l.ln_mlp);
    } else {
      norm(p + "input_layernorm", l.input_layernorm);
      if (!cfg_.parallel_attn) norm(p + "post_attention_layernorm", l.post_attention_layernorm);
    }
    linear(p + "self_attention.query_key_value", l.query_key_value);
    linear(p + "self_attention.dense", l.dense);
    linear(p + "mlp.dense_h_to_4h", l.dense_h_to_4h);
    linear(p + "mlp.dense_4h_to_h", l.dense_4h_to_h);
  }
  norm("transformer.ln_f", ln_f_);
  if (!tied_) linear("lm_head", lm_head_);
  return out;
}

std::vector<LinearSlot> FalconForCausalLM::linears() {
  std::vector<LinearSlot> out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = layers_[i];
    std::string p = fmt::format("transformer.h.{}.", i);
    out.push_back({p + "self_attention.query_key_value", &l.query_key_value});
    out.push_back({p + "self_attention.dense", &l.dense});
    out.push_back({p + "mlp.dense_h_to_4h", &l.dense_h_to_4h});
    out.push_back({p + "mlp.dense_4h_to_h", &l.dense_4h_to_h});
  }
  out.push_back({"lm_head", &lm_head_});
  return out;
}

void FalconForCausalLM::tie_lm_head() {
  auto* dense = dynamic_cast<DenseLinear*>(lm_head_.get());
  if (!dense) throw ModelError("lm_head has been replaced; it can no longer be tied to the embedding");
  dense->weight = word_embeddings_;  // the same tensor, as transformers' tie_weights
  tied_ = true;
}

void FalconForCausalLM::untie_lm_head() {
  if (!tied_) return;
  if (auto* dense = dynamic_cast<DenseLinear*>(lm_head_.get()); dense && dense->weight.defined())
    dense->weight = dense->weight.clone();
  tied_ = false;
  cfg_.tie_word_embeddings = false;
}

at::Tensor FalconForCausalLM::embed(const at::Tensor& input_ids) const {
  return at::embedding(word_embeddings_, input_ids);
}

at::Tensor FalconForCausalLM::attention(const Layer& layer, int64_t index, const at::Tensor& x, const at::Tensor& cos,
                                        const at::Tensor& sin, const at::Tensor& mask, bool is_causal,
                                        KVCache* cache) const {
  const int64_t B = x.size(0), S = x.size(1), H = cfg_.num_attention_heads, hd = cfg_.head_dim();
  const int64_t kv = cfg_.kv_heads();
  at::Tensor fused = layer.query_key_value->forward(x);
  at::Tensor q, k, v;  // [B, S, heads, hd]
  // FalconAttention._split_heads: three row layouts of the fused projection.
  if (cfg_.new_decoder_architecture) {
    // Groups of [q × H/kv, k, v]; query head g·(H/kv)+j uses group g's k/v, which is how
    // SDPA's enable_gqa pairs heads, so k/v are never repeated in memory.
    at::Tensor qkv = fused.view({B, S, kv, H / kv + 2, hd});
    q = qkv.narrow(3, 0, H / kv).reshape({B, S, H, hd});
    k = qkv.select(3, H / kv);
    v = qkv.select(3, H / kv + 1);
  } else if (!cfg_.multi_query) {
    at::Tensor qkv = fused.view({B, S, H, 3, hd});  // rows interleaved per head: [q_h, k_h, v_h]
    q = qkv.select(3, 0);
    k = qkv.select(3, 1);
    v = qkv.select(3, 2);
  } else {
    at::Tensor qkv = fused.view({B, S, H + 2, hd});  // [q_0 .. q_{H-1} | k | v]
    q = qkv.narrow(2, 0, H);
    k = qkv.narrow(2, H, 1);
    v = qkv.narrow(2, H + 1, 1);
  }
  q = q.transpose(1, 2).reshape({B, H, S, hd});
  k = k.transpose(1, 2).reshape({B, kv, S, hd});
  v = v.transpose(1, 2).reshape({B, kv, S, hd});
  if (!cfg_.alibi) {
    q = ops::apply_rotary(q, cos, sin);
    k = ops::apply_rotary(k, cos, sin);
  }
  if (cache) {
    // DynamicCache.update: concatenate along the sequence.
    at::Tensor& ck = cache->keys[static_cast<size_t>(index)];
    at::Tensor& cv = cache->values[static_cast<size_t>(index)];
    ck = ck.defined() ? at::cat({ck, k}, 2) : k;
    cv = cv.defined() ? at::cat({cv, v}, 2) : v;
    k = ck;
    v = cv;
  }
  std::optional<at::Tensor> attn_mask;
  if (mask.defined()) attn_mask = mask;
  at::Tensor out = at::scaled_dot_product_attention(q, k, v, attn_mask, 0.0, is_causal, std::nullopt,
                                                    /*enable_gqa=*/kv != H);
  out = out.transpose(1, 2).reshape({B, S, H * hd});
  return layer.dense->forward(out);
}

at::Tensor FalconForCausalLM::layer_forward(const Layer& layer, int64_t index, const at::Tensor& x,
                                            const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask,
                                            bool is_causal, KVCache* cache) const {
  // FalconDecoderLayer.forward.
  at::Tensor residual = x;
  at::Tensor attn_in, mlp_in;
  if (cfg_.two_layer_norms()) {
    attn_in = layer.ln_attn.forward(x);
    mlp_in = layer.ln_mlp.forward(x);
  } else {
    attn_in = layer.input_layernorm.forward(x);
  }
  at::Tensor attn = attention(layer, index, attn_in, cos, sin, mask, is_causal, cache);
  if (!cfg_.two_layer_norms()) {
    if (cfg_.parallel_attn) {
      mlp_in = attn_in;  // falcon-7b: one LayerNorm feeds both branches
    } else {
      residual = residual + attn;  // falcon-rw-1b: sequential
      mlp_in = layer.post_attention_layernorm.forward(residual);
    }
  }
  at::Tensor mlp = layer.dense_4h_to_h->forward(at::gelu(layer.dense_h_to_4h->forward(mlp_in)));
  if (cfg_.new_decoder_architecture || cfg_.parallel_attn) mlp = mlp + attn;  // `mlp_output += attention_output`
  return residual + mlp;
}

at::Tensor FalconForCausalLM::hidden_states(const FalconInputs& in, KVCache* cache) const {
  if (!word_embeddings_.defined()) throw ModelError("the model's weights are not loaded");
  at::Tensor x = in.inputs_embeds.defined() ? in.inputs_embeds : embed(in.input_ids);
  const int64_t B = x.size(0), S = x.size(1);
  if (cache && cache->keys.empty()) {
    cache->keys.resize(layers_.size());
    cache->values.resize(layers_.size());
  }
  const int64_t past = cache ? cache->length() : 0;
  auto long_opts = at::TensorOptions().dtype(at::kLong).device(x.device());
  if (in.attention_mask.defined() && in.attention_mask.size(-1) != past + S)
    throw ModelError(fmt::format("attention_mask covers {} positions, expected past {} + new {}",
                                 in.attention_mask.size(-1), past, S));

  // torch.finfo(dtype).min of the activation dtype (not -inf, as transformers).
  double min = -std::numeric_limits<float>::max();
  if (x.scalar_type() == at::kHalf) min = -65504.0;
  if (x.scalar_type() == at::kBFloat16) min = -3.3895313892515355e38;
  if (x.scalar_type() == at::kDouble) min = -std::numeric_limits<double>::max();
  at::Tensor mask;  // for SDPA: undefined, boolean (true = attend) or additive
  bool is_causal = false;
  at::Tensor cos, sin;
  if (cfg_.alibi) {
    // FalconModel.forward: ALiBi from the 2-D mask, folded with the causal mask into one
    // additive mask `alibi / sqrt(head_dim)`, with finfo.min where attention is not allowed.
    at::Tensor m2 = in.attention_mask.defined() ? in.attention_mask : at::ones({B, past + S}, long_opts);
    at::Tensor alibi = ops::alibi_bias(m2, cfg_.num_attention_heads, x.scalar_type());  // [B, H, 1, K]
    at::Tensor allowed = ops::causal_padding_mask(m2, past, S);                           // [B, 1, S, K]
    mask = at::masked_fill(alibi / std::sqrt(static_cast<double>(cfg_.head_dim())), allowed.logical_not(), min);
  } else {
    at::Tensor pos = in.position_ids.defined() ? in.position_ids : at::arange(past, past + S, long_opts).unsqueeze(0);
    std::tie(cos, sin) = ops::rotary_cos_sin(inv_freq_, pos, x.scalar_type());
    if (in.attention_mask.defined()) {
      mask = ops::causal_padding_mask(in.attention_mask, past, S);
    } else if (past == 0) {
      is_causal = S > 1;  // top-left causal alignment equals the full mask without a cache
    } else if (S > 1) {
      mask = ops::causal_padding_mask(at::ones({B, past + S}, long_opts), past, S);
    }
  }
  const bool recompute = gradient_checkpointing_ && !cache && at::GradMode::is_enabled();
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto index = static_cast<int64_t>(i);
    if (recompute) {
      x = checkpointed([this, index, cos, sin, mask, is_causal](const at::Tensor& in) {
        return layer_forward(layers_[static_cast<size_t>(index)], index, in, cos, sin, mask, is_causal, nullptr);
      }, x);
    } else {
      x = layer_forward(layers_[i], index, x, cos, sin, mask, is_causal, cache);
    }
  }
  return ln_f_.forward(x);
}

std::vector<int64_t> greedy_generate(const FalconForCausalLM& model, const std::vector<int64_t>& prompt,
                                     int64_t max_new_tokens, std::optional<int64_t> eos) {
  if (prompt.empty()) throw ModelError("greedy_generate: the prompt is empty");
  at::NoGradGuard no_grad;
  KVCache cache;
  auto opts = at::TensorOptions().dtype(at::kLong).device(model.device());
  at::Tensor ids = at::tensor(prompt, at::TensorOptions().dtype(at::kLong)).unsqueeze(0).to(model.device());
  std::vector<int64_t> out;
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    FalconInputs in;
    in.input_ids = ids;
    at::Tensor logits = model.forward(in, &cache);
    int64_t next = logits.select(1, logits.size(1) - 1).argmax(-1).item<int64_t>();
    out.push_back(next);
    if (eos && next == *eos) break;
    ids = at::full({1, 1}, next, opts);
  }
  return out;
}

}  // namespace autotrain::model
