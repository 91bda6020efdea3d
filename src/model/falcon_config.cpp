#include "autotrain/model/falcon_config.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autotrain/io/json_error.h"
#include "autotrain/io/json_text.h"

namespace autotrain::model {

namespace {

using nlohmann::json;

class Reader {
 public:
  Reader(const json& j, std::string_view where) : j_(j), where_(where) {}

  [[noreturn]] void fail(const std::string& what) const { throw ModelError(fmt::format("{}: {}", where_, what)); }

  // The value of the first present, non-null key among `names` (in-library spelling first).
  const json* find(std::initializer_list<const char*> names, std::string* found = nullptr) const {
    for (const char* n : names) {
      auto it = j_.find(n);
      if (it != j_.end() && !it->is_null()) {
        if (found) *found = n;
        return &*it;
      }
    }
    return nullptr;
  }

  int64_t positive_int(std::initializer_list<const char*> names, int64_t fallback) const {
    std::string key;
    const json* v = find(names, &key);
    if (!v) return fallback;
    if (!v->is_number_integer() || v->get<int64_t>() <= 0)
      fail(fmt::format("\"{}\" must be a positive integer, got {}", key, v->dump()));
    return v->get<int64_t>();
  }

  bool boolean(const char* name, bool fallback) const {
    const json* v = find({name});
    if (!v) return fallback;
    if (!v->is_boolean()) fail(fmt::format("\"{}\" must be true or false, got {}", name, v->dump()));
    return v->get<bool>();
  }

  double number(const json& v, const char* name) const {
    if (!v.is_number() || v.get<double>() <= 0) fail(fmt::format("\"{}\" must be a positive number, got {}", name, v.dump()));
    return v.get<double>();
  }

  std::optional<int64_t> token_id(const char* name, std::optional<int64_t> fallback) const {
    auto it = j_.find(name);
    if (it == j_.end()) return fallback;
    if (it->is_null()) return std::nullopt;
    const json& v = it->is_array() && !it->empty() ? (*it)[0] : *it;  // eos may be a list
    if (!v.is_number_integer()) fail(fmt::format("\"{}\" must be an integer token id, got {}", name, it->dump()));
    return v.get<int64_t>();
  }

 private:
  const json& j_;
  std::string where_;
};

}  // namespace

int64_t FalconConfig::kv_heads() const {
  if (new_decoder_architecture) return num_kv_heads;
  return multi_query ? 1 : num_attention_heads;
}

int64_t FalconConfig::qkv_out_features() const {
  return (num_attention_heads + 2 * kv_heads()) * head_dim();
}

FalconConfig FalconConfig::from_json(const json& j, std::string_view where) {
  if (!j.is_object()) throw ModelError(fmt::format("{}: expected a JSON object", where));
  Reader r(j, where);
  FalconConfig c;

  const json* mt = r.find({"model_type"});
  if (!mt || !mt->is_string())
    r.fail("no \"model_type\": expected \"falcon\" (or the legacy \"RefinedWeb\" / \"RefinedWebModel\")");
  c.model_type = mt->get<std::string>();
  bool legacy_40b = c.model_type == "RefinedWeb";
  if (c.model_type != "falcon" && !legacy_40b && c.model_type != "RefinedWebModel") {
    std::string arch = j.contains("architectures") ? j["architectures"].dump() : "[]";
    r.fail(fmt::format("model_type \"{}\" (architectures {}) is not supported: autotrain supports Falcon models "
                       "(model_type \"falcon\", \"RefinedWeb\" or \"RefinedWebModel\")",
                       c.model_type, arch));
  }

  c.vocab_size = r.positive_int({"vocab_size"}, c.vocab_size);
  c.hidden_size = r.positive_int({"hidden_size", "n_embed"}, c.hidden_size);
  c.num_hidden_layers = r.positive_int({"num_hidden_layers", "n_layer"}, c.num_hidden_layers);
  c.num_attention_heads = r.positive_int({"num_attention_heads", "n_head"}, c.num_attention_heads);
  c.num_kv_heads = r.positive_int({"num_kv_heads", "n_head_kv"}, c.num_attention_heads);
  // The legacy model_type carries the architecture: RefinedWeb is the 40B decoder.
  c.new_decoder_architecture = r.boolean("new_decoder_architecture", legacy_40b);
  c.multi_query = r.boolean("multi_query", true);
  c.parallel_attn = r.boolean("parallel_attn", true);
  c.bias = r.boolean("bias", false);
  c.alibi = r.boolean("alibi", false);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", true);
  c.max_position_embeddings = r.positive_int({"max_position_embeddings"}, 2048);
  c.ffn_hidden_size = r.positive_int({"ffn_hidden_size"}, 4 * c.hidden_size);
  if (const json* eps = r.find({"layer_norm_epsilon"})) c.layer_norm_epsilon = r.number(*eps, "layer_norm_epsilon");
  if (const json* ir = r.find({"initializer_range"})) c.initializer_range = r.number(*ir, "initializer_range");
  for (auto [key, field] : {std::pair{"hidden_dropout", &c.hidden_dropout}, std::pair{"attention_dropout", &c.attention_dropout}})
    if (const json* d = r.find({key})) {
      if (!d->is_number() || d->get<double>() < 0 || d->get<double>() >= 1)
        r.fail(fmt::format("\"{}\" must be a probability in [0, 1), got {}", key, d->dump()));
      *field = d->get<double>();
    }
  c.bos_token_id = r.token_id("bos_token_id", 11);
  c.eos_token_id = r.token_id("eos_token_id", 11);
  if (const json* d = r.find({"dtype", "torch_dtype"}); d && d->is_string()) c.torch_dtype = d->get<std::string>();
  if (const json* q = r.find({"quantization_config"}); q && q->is_object() && !q->empty()) {
    auto flag = [&](const char* key) { return q->is_object() && q->contains(key) && (*q)[key] == true; };
    const std::string method =
        q->is_object() && q->contains("quant_method") && (*q)["quant_method"].is_string() ? (*q)["quant_method"].get<std::string>() : "";
    if (method == "bitsandbytes" || (method.empty() && (flag("load_in_4bit") || flag("load_in_8bit"))))
      c.quantization = flag("load_in_4bit") || flag("_load_in_4bit") ? "bitsandbytes 4-bit"
                       : flag("load_in_8bit") || flag("_load_in_8bit") ? "bitsandbytes 8-bit"
                                                                       : "bitsandbytes";
    else
      c.quantization = method.empty() ? "an unknown method" : method;
  }

  if (const json* act = r.find({"activation"}); act && *act != "gelu")
    r.fail(fmt::format("\"activation\" {} is not supported (Falcon uses \"gelu\")", act->dump()));

  // Rotary: transformers 5 writes rope_parameters {rope_type, rope_theta}; older files a
  // top-level rope_theta and maybe rope_scaling. Only the default (unscaled) rotary is built. As
  // transformers standardizes them: rope_parameters' values win over the top-level rope_theta
  // (a fallback), and "type" is the old spelling of "rope_type".
  if (const json* theta = r.find({"rope_theta"})) c.rope_theta = r.number(*theta, "rope_theta");
  if (const json* rp = r.find({"rope_parameters"})) {
    if (!rp->is_object()) r.fail("\"rope_parameters\" must be an object");
    for (const char* key : {"rope_type", "type"})
      if (rp->contains(key) && (*rp)[key] != "default")
        r.fail(fmt::format("rope_parameters {} {} is not supported (only \"default\" rotary embeddings)", key,
                           (*rp)[key].dump()));
    if (rp->contains("rope_theta")) c.rope_theta = r.number((*rp)["rope_theta"], "rope_theta");
  }
  if (const json* rs = r.find({"rope_scaling"}))
    r.fail(fmt::format("\"rope_scaling\" {} is not supported (only unscaled rotary embeddings)", rs->dump()));

  if (const json* n = r.find({"num_ln_in_parallel_attn"})) {
    if (!n->is_number_integer() || (*n != 1 && *n != 2))
      r.fail(fmt::format("\"num_ln_in_parallel_attn\" must be 1, 2 or null, got {}", n->dump()));
    c.num_ln_in_parallel_attn = n->get<int>();
  } else {
    c.num_ln_in_parallel_attn = c.new_decoder_architecture ? 2 : 1;
  }

  if (c.hidden_size % c.num_attention_heads != 0)
    r.fail(fmt::format("hidden_size {} is not a multiple of num_attention_heads {}", c.hidden_size,
                       c.num_attention_heads));
  if (!c.alibi && c.head_dim() % 2 != 0)
    r.fail(fmt::format("head_dim {} must be even for rotary embeddings", c.head_dim()));
  if (c.new_decoder_architecture) {
    if (c.num_attention_heads % c.num_kv_heads != 0)
      r.fail(fmt::format("num_attention_heads {} is not a multiple of num_kv_heads {}", c.num_attention_heads,
                         c.num_kv_heads));
    if (!c.parallel_attn)
      r.fail("new_decoder_architecture with parallel_attn false is not a Falcon layout (transformers cannot run it "
             "either)");
    if (c.alibi) r.fail("alibi with new_decoder_architecture is not supported");
  } else if (!c.multi_query && c.num_kv_heads != c.num_attention_heads) {
    r.fail(fmt::format("multi-head attention (multi_query false) needs num_kv_heads == num_attention_heads, got {} "
                       "and {}",
                       c.num_kv_heads, c.num_attention_heads));
  }
  return c;
}

FalconConfig FalconConfig::load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ModelError(fmt::format("{}: cannot read the model config (a model folder holds config.json next to its "
                                 "*.safetensors files)",
                                 path.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = io::parse_json_text(ss.str());
  } catch (const json::exception& e) {
    throw ModelError(fmt::format("{}: not valid JSON: {}", path.string(), io::json_error_text(e)));
  }
  return from_json(j, path.string());
}

}  // namespace autotrain::model
