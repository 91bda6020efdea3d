// LoRA layers, injection and PEFT adapter files. See include/autotrain/lora/lora.h.
#include "autotrain/lora/lora.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "autotrain/config/config.h"
#include "autotrain/io/atomic_file.h"
#include "autotrain/io/json_text.h"
#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/torch.h"
#include "autotrain/io/json_error.h"

namespace autotrain::lora {

namespace {

constexpr std::string_view kKeyPrefix = "base_model.model.";

std::string short_name(const std::string& module) {
  auto dot = module.rfind('.');
  return dot == std::string::npos ? module : module.substr(dot + 1);
}

bool peft_matches(const std::string& module, const std::string& target) {
  // PEFT's rule for a list of names: the full name, or a "."-separated suffix of it.
  return module == target || (module.size() > target.size() && module.ends_with("." + target));
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// TARGET_MODULES as AutoTrain hands it to PEFT (get_target_modules): stripped; empty means the
// model's default; "all-linear" in any case is PEFT's shorthand (PEFT lowercases it too); else
// the comma-split list (items stripped here; AutoTrain does not, but a name never has spaces).
struct TargetSpec {
  enum Kind { kDefault, kAllLinear, kList } kind = kDefault;
  std::vector<std::string> names;  // kList: the items, in order, without duplicates or empties
  bool only_separators = false;    // kList with nothing but commas and spaces (",")
};

TargetSpec parse_target_spec(const std::string& spec) {
  TargetSpec t;
  const std::string s = trim(spec);
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s.empty()) return t;
  if (lower == "all-linear") {
    t.kind = TargetSpec::kAllLinear;
    return t;
  }
  t.kind = TargetSpec::kList;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    item = trim(item);
    if (!item.empty() && std::find(t.names.begin(), t.names.end(), item) == t.names.end()) t.names.push_back(item);
  }
  t.only_separators = t.names.empty();
  return t;
}

// Bad TARGET_MODULES values are configuration errors: the CLI reports them as such (exit 2).
[[noreturn]] void target_modules_error(const std::string& message) {
  throw config::ConfigError({{"TARGET_MODULES", message}}, {});
}

at::Device device_of(model::Linear& layer) {
  for (auto& [name, t] : layer.named_tensors())
    if (t->defined()) return t->device();
  return at::kCPU;
}

model::LinearPtr* find_slot(model::FalconForCausalLM& model, const std::string& name) {
  for (auto& slot : model.linears())
    if (slot.name == name) return slot.layer;
  return nullptr;
}

// Wraps each named layer; A and B are created by `make` ([r, in], [out, r], float32, CPU).
template <typename Make>
InjectedLora wrap_layers(model::FalconForCausalLM& model, const std::vector<std::string>& modules, int64_t r,
                         double scaling, double dropout, Make make) {
  InjectedLora out;
  for (const auto& name : modules) {
    model::LinearPtr* slot = find_slot(model, name);
    if (!slot) throw AdapterError(fmt::format("no linear layer named {}", name));
    if (dynamic_cast<LoraLinear*>(slot->get()))
      throw AdapterError(fmt::format("{} already has a LoRA adapter; load or inject only one", name));
    // Build (and, when loading, validate) the adapter before touching the slot, so a refused
    // adapter leaves the model as it was.
    auto [a, b] = make(name, (*slot)->in_features(), (*slot)->out_features());
    const at::Device device = device_of(**slot);
    auto layer = std::make_unique<LoraLinear>(std::move(*slot), r, scaling, dropout);
    layer->lora_A = a.to(device).requires_grad_(true);
    layer->lora_B = b.to(device).requires_grad_(true);
    out.modules.push_back(name);
    out.layers.push_back(layer.get());
    *slot = std::move(layer);
  }
  return out;
}

std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

double LoraOptions::scaling() const { return rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / r; }

LoraLinear::LoraLinear(model::LinearPtr base, int64_t r, double scaling, double dropout)
    : base_(std::move(base)), scaling_(scaling), dropout_(dropout) {
  (void)r;
}

void LoraLinear::merge() {
  if (merged_) return;
  auto* dense = dynamic_cast<model::DenseLinear*>(base_.get());
  if (!dense) throw AdapterError("merge: only a dense (16/32-bit) base layer can absorb the adapter; load the base "
                                 "without 4-bit quantization to merge");
  at::NoGradGuard no_grad;
  dense->weight = (dense->weight.to(at::kFloat) + delta_weight().to(dense->weight.device())).to(dense->weight.scalar_type());
  merged_ = true;
}

void LoraLinear::unmerge() {
  if (!merged_) return;
  auto* dense = dynamic_cast<model::DenseLinear*>(base_.get());
  at::NoGradGuard no_grad;
  dense->weight = (dense->weight.to(at::kFloat) - delta_weight().to(dense->weight.device())).to(dense->weight.scalar_type());
  merged_ = false;
}

at::Tensor LoraLinear::forward(const at::Tensor& x) const {
  if (merged_) return base_->forward(x);
  // PEFT's lora.Linear.forward: the base output keeps its dtype; the adapter runs in its own
  // (float32) dtype on a cast input, and the sum is cast back.
  at::Tensor result = base_->forward(x);
  const auto result_dtype = result.scalar_type();
  at::Tensor h = x.to(lora_A.scalar_type());
  if (dropout_ > 0.0 && training_) h = at::dropout(h, dropout_, /*train=*/true);
  at::Tensor delta = at::linear(at::linear(h, lora_A), lora_B) * scaling_;
  return (result + delta).to(result_dtype);
}

std::vector<std::pair<std::string, at::Tensor*>> LoraLinear::named_tensors() {
  auto out = base_->named_tensors();
  out.emplace_back("lora_A.weight", &lora_A);
  out.emplace_back("lora_B.weight", &lora_B);
  return out;
}

at::Tensor LoraLinear::delta_weight() const {
  return at::matmul(lora_B.detach().to(at::kFloat), lora_A.detach().to(at::kFloat)) * scaling_;
}

std::vector<std::string> resolve_target_modules(model::FalconForCausalLM& model, const std::string& spec) {
  std::vector<std::string> names;
  for (auto& slot : model.linears()) names.push_back(slot.name);
  auto layer_list = [&] {
    std::set<std::string> shorts;
    for (const auto& n : names) shorts.insert(short_name(n));
    std::string list;
    for (const auto& s : shorts) list += (list.empty() ? "" : ", ") + s;
    return list;
  };
  const TargetSpec target = parse_target_spec(spec);
  std::vector<std::string> selected;
  if (target.kind == TargetSpec::kAllLinear) {
    // PEFT's all-linear: every linear layer except the output layer.
    for (const auto& n : names)
      if (n != "lm_head") selected.push_back(n);
    return selected;
  }
  if (target.only_separators)
    target_modules_error(fmt::format(
        "TARGET_MODULES '{}' names no module (only commas and spaces), so nothing would be trained; give a comma list "
        "of this model's layers ({}), all-linear, or leave it empty for PEFT's Falcon default query_key_value",
        spec, layer_list()));
  const std::vector<std::string> targets =
      target.kind == TargetSpec::kDefault ? std::vector<std::string>{"query_key_value"} : target.names;
  std::set<std::string> chosen;
  for (const auto& t : targets) {
    bool any = false;
    for (const auto& n : names)
      if (peft_matches(n, t)) {
        chosen.insert(n);
        any = true;
      }
    if (!any)
      target_modules_error(fmt::format("TARGET_MODULES: '{}' matches no linear layer of this model; its layers are {} "
                                       "(a name matches a layer's full name or its last parts), or use all-linear",
                                       t, layer_list()));
  }
  for (const auto& n : names)
    if (chosen.count(n)) selected.push_back(n);
  return selected;
}

std::vector<at::Tensor> InjectedLora::parameters() const {
  std::vector<at::Tensor> out;
  for (auto* l : layers) {
    out.push_back(l->lora_A);
    out.push_back(l->lora_B);
  }
  return out;
}

InjectedLora inject_lora(model::FalconForCausalLM& model, const LoraOptions& options, uint64_t seed) {
  if (options.r < 1) throw AdapterError(fmt::format("LoRA rank must be at least 1, got {}", options.r));
  auto modules = resolve_target_modules(model, options.target_modules);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return wrap_layers(model, modules, options.r, options.scaling(), options.dropout,
                     [&](const std::string&, int64_t in, int64_t out) {
                       // kaiming_uniform_(a=sqrt(5)): gain sqrt(2/(1+5)), bound gain*sqrt(3/in) = 1/sqrt(in).
                       const double bound = 1.0 / std::sqrt(static_cast<double>(in));
                       at::Tensor a = at::empty({options.r, in}, at::kFloat).uniform_(-bound, bound, gen);
                       at::Tensor b = at::zeros({out, options.r}, at::kFloat);
                       return std::make_pair(a, b);
                     });
}

int64_t count_parameters(model::FalconForCausalLM& model, bool trainable_only) {
  int64_t total = 0;
  auto add = [&](const at::Tensor& t) {
    if (!t.defined()) return;
    if (trainable_only && !t.requires_grad()) return;
    // A packed 4-bit weight holds two parameters per byte (PEFT counts Params4bit the same way).
    total += t.scalar_type() == at::kByte ? 2 * t.numel() : t.numel();
  };
  for (auto& [name, t] : model.named_parameters()) add(*t);
  // named_parameters() leaves a tied lm_head out (its weight is the embedding). PyTorch's, which
  // PEFT counts, skips only the shared tensor: a LoRA adapter on the tied lm_head still counts.
  if (model.lm_head_tied())
    for (auto& slot : model.linears())
      if (slot.name == "lm_head")
        for (auto& [suffix, t] : (*slot.layer)->named_tensors())
          if (suffix != "weight") add(*t);
  return total;
}

std::string trainable_parameters_line(model::FalconForCausalLM& model) {
  const int64_t trainable = count_parameters(model, true);
  const int64_t all = count_parameters(model, false);
  return fmt::format("trainable params: {} || all params: {} || trainable%: {:.4f}", with_commas(trainable),
                     with_commas(all), all ? 100.0 * static_cast<double>(trainable) / static_cast<double>(all) : 0.0);
}

void save_adapter(const InjectedLora& lora, const LoraOptions& options, const std::string& base_model_name,
                  const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (size_t i = 0; i < lora.layers.size(); ++i) {
    const std::string key = std::string(kKeyPrefix) + lora.modules[i];
    tensors.emplace_back(key + ".lora_A.weight", lora.layers[i]->lora_A.detach().to(at::kCPU).contiguous());
    tensors.emplace_back(key + ".lora_B.weight", lora.layers[i]->lora_B.detach().to(at::kCPU).contiguous());
  }
  safetensors::save_tensors(dir / "adapter_model.safetensors", tensors);

  // target_modules as PEFT saves the argument AutoTrain gives it: the default mapping's list for
  // an empty value, every matched module's full name for all-linear (PEFT expands the shorthand
  // before saving), else the names given, as they were given. Not the matched layers' last name
  // parts: PEFT re-matches the saved names on load, and "query_key_value" would hit every layer
  // when only transformer.h.0's was trained. PEFT writes these sets in arbitrary order; sorted here.
  const TargetSpec spec = parse_target_spec(options.target_modules);
  std::vector<std::string> targets = spec.kind == TargetSpec::kDefault     ? std::vector<std::string>{"query_key_value"}
                                     : spec.kind == TargetSpec::kAllLinear ? lora.modules
                                                                           : spec.names;
  std::sort(targets.begin(), targets.end());

  // Every field peft 0.21.2's LoraConfig writes, with its defaults (nlohmann's object keeps keys
  // sorted, as json.dumps(sort_keys=True)); lora_test compares the whole object with PEFT's. One
  // is left out on purpose: peft_version records the PEFT build that wrote the file (PEFT adds
  // the git hash for dev builds), and no PEFT wrote this one. PEFT fills it in on load, and its
  // version checks read a missing value as an adapter from before 0.18, which LoRA's unchanged
  // layout is compatible with.
  nlohmann::json cfg = {
      {"alora_invocation_tokens", nullptr},
      {"alpha_pattern", nlohmann::json::object()},
      {"arrow_config", nullptr},
      {"auto_mapping", nullptr},
      {"base_model_name_or_path", base_model_name.empty() ? nlohmann::json() : nlohmann::json(base_model_name)},
      {"bias", "none"},
      {"corda_config", nullptr},
      {"ensure_weight_tying", false},
      {"eva_config", nullptr},
      {"exclude_modules", nullptr},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"kasa_config", nullptr},
      {"layer_replication", nullptr},
      {"layers_pattern", nullptr},
      {"layers_to_transform", nullptr},
      {"loftq_config", nlohmann::json::object()},
      {"lora_alpha", options.alpha},
      {"lora_bias", false},
      {"lora_dropout", options.dropout},
      {"lora_ga_config", nullptr},
      {"megatron_config", nullptr},
      {"megatron_core", "megatron.core"},
      {"modules_to_save", nullptr},
      {"monteclora_config", nullptr},
      {"peft_type", "LORA"},
      {"qalora_group_size", 16},
      {"r", options.r},
      {"rank_pattern", nlohmann::json::object()},
      {"revision", nullptr},
      {"target_modules", targets},
      {"target_parameters", nullptr},
      {"task_type", "CAUSAL_LM"},
      {"trainable_token_indices", nullptr},
      {"use_bdlora", nullptr},
      {"use_dora", false},
      {"use_qalora", false},
      {"use_rslora", options.rslora},
      {"velora_config", nullptr},
  };
  // PEFT writes integral alphas as integers (lora_alpha: 32).
  if (options.alpha == std::floor(options.alpha)) cfg["lora_alpha"] = static_cast<int64_t>(options.alpha);
  io::write_file_atomic(dir / "adapter_config.json", cfg.dump(2) + "\n");
}

LoadedAdapter load_adapter(model::FalconForCausalLM& model, const std::filesystem::path& dir, bool warn) {
  const auto config_path = dir / "adapter_config.json";
  const auto weights_path = dir / "adapter_model.safetensors";
  if (!std::filesystem::is_directory(dir))
    throw AdapterError(fmt::format("adapter folder {} does not exist", dir.string()));
  if (!std::filesystem::exists(config_path))
    throw AdapterError(fmt::format("{} has no adapter_config.json; is it a PEFT adapter folder?", dir.string()));
  if (!std::filesystem::exists(weights_path)) {
    if (std::filesystem::exists(dir / "adapter_model.bin"))
      throw AdapterError(fmt::format(
          "{} holds adapter_model.bin (a pickle); only adapter_model.safetensors is read. Convert it with PEFT: "
          "PeftModel.from_pretrained(base, '{}').save_pretrained(OUT, safe_serialization=True)",
          dir.string(), dir.string()));
    throw AdapterError(fmt::format("{} has no adapter_model.safetensors", dir.string()));
  }

  nlohmann::json cfg;
  try {
    std::ifstream in(config_path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    cfg = io::parse_json_text(text.str());
  } catch (const std::exception& e) {
    throw AdapterError(fmt::format("{}: not valid JSON: {}", config_path.string(), io::json_error_text(e)));
  }
  auto where = config_path.string();
  auto get = [&](const char* key, auto fallback) {
    using V = decltype(fallback);
    if (!cfg.contains(key) || cfg[key].is_null()) return fallback;
    try {
      return cfg[key].get<V>();
    } catch (const std::exception&) {
      throw AdapterError(fmt::format("{}: '{}' has the wrong type", where, key));
    }
  };
  // What PEFT itself refuses (KeyError, TypeError) is refused here too, not guessed at.
  if (!cfg.is_object() || !cfg.contains("peft_type"))
    throw AdapterError(fmt::format("{}: no \"peft_type\"; PEFT writes it in every adapter_config.json (\"LORA\" for "
                                   "a LoRA adapter), and cannot load one without it",
                                   where));
  if (get("peft_type", std::string("LORA")) != "LORA")
    throw AdapterError(fmt::format("{}: peft_type {} is not supported (only LORA)", where, cfg["peft_type"].dump()));
  for (const char* key : {"r", "lora_alpha"})
    if (cfg.contains(key) && !cfg[key].is_number())
      throw AdapterError(fmt::format("{}: \"{}\" is {}; it must be a number", where, key, cfg[key].dump()));
  if (get("use_dora", false)) throw AdapterError(fmt::format("{}: DoRA adapters (use_dora) are not supported", where));
  if (get("fan_in_fan_out", false) && warn)
    // Falcon's layers are nn.Linear, whose weight is [out, in]: PEFT warns and sets it false.
    fmt::print(stderr, "warning: {}: fan_in_fan_out is true, but Falcon's layers are nn.Linear; it is ignored, as PEFT "
               "ignores it for them\n", where);
  for (const char* key : {"modules_to_save", "megatron_config"})
    if (cfg.contains(key) && !cfg[key].is_null() && !cfg[key].empty())
      throw AdapterError(fmt::format("{}: {} = {} is not supported (plain LoRA on the linear layers only); load this "
                                     "adapter with PEFT",
                                     where, key, cfg[key].dump()));
  if (get("bias", std::string("none")) != "none")
    throw AdapterError(fmt::format("{}: adapters with trained biases are not supported (bias must be \"none\", it is "
                                   "\"{}\")",
                                   where, get("bias", std::string("none"))));
  if (get("lora_bias", false))
    throw AdapterError(fmt::format("{}: lora_bias is true (a bias on each lora_B): not supported; load this adapter "
                                   "with PEFT",
                                   where));
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (cfg.contains(key) && cfg[key].is_object() && !cfg[key].empty())
      throw AdapterError(fmt::format("{}: per-module {} is not supported", where, key));
  // Initialisations other than true/false, "gaussian" and "eva" may rewrite the base weights when
  // the adapter is made (PiSSA, OLoRA, CorDA, LoftQ, LoRA-GA, ...): such an adapter only fits that
  // rewritten base, not the model it is loaded onto here. An allowlist, so a new one is refused.
  if (cfg.contains("init_lora_weights") && cfg["init_lora_weights"].is_string()) {
    std::string init = cfg["init_lora_weights"].get<std::string>();
    std::transform(init.begin(), init.end(), init.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (init != "gaussian" && init != "eva")
      throw AdapterError(fmt::format(
          "{}: init_lora_weights \"{}\" may have changed the base weights when the adapter was made, so it would not "
          "fit the original base; convert it to a plain LoRA adapter with PEFT (save_pretrained with "
          "path_initial_model_for_weight_conversion) first (accepted: true, false, \"gaussian\", \"eva\")",
          where, cfg["init_lora_weights"].get<std::string>()));
  }
  // Every other field must be one whose meaning this loader implements or that only mattered when
  // the adapter was made; an unknown one counts only while it is unset (null, false, empty). So a
  // newer PEFT feature that changes the forward pass (aLoRA's invocation tokens, ...) is refused,
  // not silently applied as plain LoRA.
  static const std::set<std::string> kUnderstood = {
      "peft_type", "task_type", "r", "lora_alpha", "lora_dropout", "use_rslora", "target_modules", "exclude_modules",
      "layers_to_transform", "layers_pattern", "bias", "lora_bias", "use_dora", "fan_in_fan_out", "rank_pattern",
      "alpha_pattern", "base_model_name_or_path", "revision", "inference_mode", "init_lora_weights", "loftq_config",
      "eva_config", "corda_config", "lora_ga_config", "auto_mapping", "megatron_config", "megatron_core",
      "peft_version", "ensure_weight_tying", "qalora_group_size", "modules_to_save"};
  for (const auto& [key, value] : cfg.items()) {
    const bool unset = value.is_null() || value == false || (value.is_object() && value.empty()) ||
                       (value.is_array() && value.empty());
    if (!kUnderstood.count(key) && !unset)
      throw AdapterError(fmt::format("{}: '{}' = {} is a PEFT feature this loader does not implement (plain LoRA "
                                     "only); load this adapter with PEFT",
                                     where, key, value.dump()));
  }

  LoadedAdapter loaded;
  loaded.options.r = get("r", int64_t{8});
  loaded.options.alpha = get("lora_alpha", 8.0);
  loaded.options.dropout = get("lora_dropout", 0.0);
  loaded.options.rslora = get("use_rslora", false);
  loaded.base_model_name = get("base_model_name_or_path", std::string());

  // The modules come from the tensors (what PEFT saved), checked against the model.
  auto file = safetensors::SafetensorsFile::open(weights_path);
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> by_module;
  std::set<std::string> model_modules;
  for (auto& slot : model.linears()) model_modules.insert(slot.name);
  for (const auto& info : file.header().tensors) {
    std::string key = info.name;
    if (!key.starts_with(kKeyPrefix))
      throw AdapterError(fmt::format("{}: tensor {} does not start with '{}'", weights_path.string(), key, kKeyPrefix));
    key = key.substr(kKeyPrefix.size());
    // Older PEFT versions kept the adapter name.
    for (std::string def : {".default.weight"})
      if (key.ends_with(def)) key = key.substr(0, key.size() - def.size()) + ".weight";
    bool is_a = key.ends_with(".lora_A.weight"), is_b = key.ends_with(".lora_B.weight");
    if (key == "lm_head.base_layer.weight") {
      // PEFT saves the (tied) head's base weight beside a LoRA on lm_head (save_embedding_layers):
      // a copy of what the model already has, unless the base was fine-tuned too.
      at::Tensor base;
      for (auto& [name, t] : model.named_parameters())
        if (name == (model.lm_head_tied() ? "transformer.word_embeddings.weight" : "lm_head.weight")) base = *t;
      at::Tensor saved = safetensors::tensor_view(file, info);
      // A model whose weights are not loaded yet (a structure check before a long load) has
      // nothing to compare with: the check happens on the loaded model.
      if (!base.defined()) continue;
      // Compared in the narrower of the two dtypes: a head saved from a bf16 model equals our fp32
      // head rounded to bf16, and our head loaded in fp16 equals a saved fp32 head rounded to fp16.
      const at::Tensor here = base.to(at::kCPU);
      if (!at::equal(saved.to(here.scalar_type()), here) && !at::equal(saved, here.to(saved.scalar_type())))
        throw AdapterError(fmt::format("{}: {} differs from this model's lm_head: the adapter was made on another base "
                                       "(or with a trained head, which is not supported)",
                                       weights_path.string(), info.name));
      continue;
    }
    if (!is_a && !is_b)
      throw AdapterError(fmt::format("{}: tensor {} is not a LoRA A/B weight (embeddings, biases and modules_to_save "
                                     "are not supported)",
                                     weights_path.string(), info.name));
    std::string module = key.substr(0, key.size() - std::string(".lora_A.weight").size());
    if (!model_modules.count(module))
      throw AdapterError(fmt::format("{}: the adapter targets {}, which this {} model does not have; the adapter was "
                                     "made for another base model",
                                     weights_path.string(), module, "Falcon"));
    // PEFT saves LoRA weights as floats; integers would be quantized values, which a cast does not undo.
    if (info.dtype != safetensors::Dtype::F16 && info.dtype != safetensors::Dtype::BF16 &&
        info.dtype != safetensors::Dtype::F32 && info.dtype != safetensors::Dtype::F64)
      throw AdapterError(fmt::format("{}: tensor {} is stored as {}; LoRA weights are floats (F32, F16 or BF16)",
                                     weights_path.string(), info.name, safetensors::dtype_name(info.dtype)));
    at::Tensor t = safetensors::tensor_view(file, info).to(at::kFloat).clone();
    (is_a ? by_module[module].first : by_module[module].second) = t;
  }
  if (by_module.empty()) throw AdapterError(fmt::format("{}: holds no LoRA weights", weights_path.string()));
  // PEFT builds the LoRA layers from the config's target_modules, then loads the weights into them:
  // - a config that targets no layer of the model is refused (NoMatchingPeftModuleError);
  // - weights of a layer the config does not target are not applied (unexpected keys);
  // - a targeted layer the weights leave out keeps a fresh LoRA whose B is zero: no effect.
  // We do the same, so the logits are PEFT's, for a list of names and for "all-linear" (a regex
  // string, layers_to_transform and exclude_modules are refused below).
  auto unset = [&](const char* key) {
    return !cfg.contains(key) || cfg[key].is_null() || (cfg[key].is_array() && cfg[key].empty());
  };
  const bool plain_list = cfg.contains("target_modules") && cfg["target_modules"].is_array();
  bool all_linear = false;  // PEFT compares target_modules.lower() with "all-linear"
  if (cfg.contains("target_modules") && cfg["target_modules"].is_string()) {
    std::string t = cfg["target_modules"].get<std::string>();
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
    all_linear = t == "all-linear";
  }
  // What this loader cannot match as PEFT does is refused, never applied some other way (the loss
  // would differ from PEFT's without a word).
  if (cfg.contains("target_modules") && cfg["target_modules"].is_string() && !all_linear)
    throw AdapterError(fmt::format("{}: target_modules \"{}\" is a regular expression (PEFT matches it against every "
                                   "module name); only a list of names or \"all-linear\" is read here. Load this "
                                   "adapter with PEFT, or write target_modules as a list of the layers it names",
                                   where, cfg["target_modules"].get<std::string>()));
  for (const char* key : {"layers_to_transform", "exclude_modules"})
    if (!unset(key))
      throw AdapterError(fmt::format("{}: {} = {} limits where PEFT puts LoRA, which is not implemented here; load this "
                                     "adapter with PEFT",
                                     where, key, cfg[key].dump()));
  if (plain_list || all_linear) {
    std::set<std::string> targeted;
    for (auto& slot : model.linears()) {
      if (all_linear) {
        if (slot.name != "lm_head") targeted.insert(slot.name);
        continue;
      }
      for (const auto& t : cfg["target_modules"])
        if (t.is_string() && peft_matches(slot.name, t.get<std::string>())) targeted.insert(slot.name);
    }
    if (targeted.empty())
      throw AdapterError(fmt::format("{}: target_modules {} names no layer of this Falcon model (PEFT refuses it too: "
                                     "\"not found in the base model\"); the adapter was made for another base model, or "
                                     "its adapter_config.json was edited",
                                     where, cfg["target_modules"].dump()));
    std::vector<std::string> untargeted;
    for (auto it = by_module.begin(); it != by_module.end();) {
      if (targeted.count(it->first)) {
        ++it;
        continue;
      }
      untargeted.push_back(it->first);
      it = by_module.erase(it);
    }
    // "2 layers (first, ... last)", for the warnings.
    auto some_layers = [](const std::vector<std::string>& names) {
      return fmt::format("{} layer{} ({}{})", names.size(), names.size() == 1 ? "" : "s", names.front(),
                         names.size() > 1 ? ", ... " + names.back() : std::string());
    };
    if (!untargeted.empty() && warn)
      fmt::print(stderr,
                 "warning: {}: the weights hold a LoRA for {} that adapter_config.json's target_modules does not "
                 "name; not applied, as in PEFT (which ignores them as unexpected keys)\n",
                 weights_path.string(), some_layers(untargeted));
    if (by_module.empty())
      throw AdapterError(fmt::format("{}: none of its LoRA weights is for a layer that adapter_config.json's "
                                     "target_modules {} names; the adapter would change nothing",
                                     weights_path.string(), cfg["target_modules"].dump()));
    std::vector<std::string> without;
    for (const auto& name : targeted)
      if (!by_module.count(name)) without.push_back(name);
    if (!without.empty() && warn)
      fmt::print(stderr,
                 "warning: {}: adapter_config.json targets {} that the weights hold no LoRA for; they run without "
                 "one, as in PEFT (which warns of missing adapter keys)\n",
                 weights_path.string(), some_layers(without));
  }

  std::vector<std::string> modules;
  for (auto& slot : model.linears())
    if (by_module.count(slot.name)) modules.push_back(slot.name);
  // The modules themselves, by full name: saving the adapter again targets exactly these.
  for (const auto& m : modules) loaded.options.target_modules += (loaded.options.target_modules.empty() ? "" : ",") + m;

  const int64_t r = loaded.options.r;
  loaded.lora = wrap_layers(model, modules, r, loaded.options.scaling(), loaded.options.dropout,
                            [&](const std::string& name, int64_t in, int64_t out) {
                              auto& [a, b] = by_module.at(name);
                              if (!a.defined() || !b.defined())
                                throw AdapterError(fmt::format("{}: {} has only one of lora_A and lora_B",
                                                               weights_path.string(), name));
                              if (a.sizes() != at::IntArrayRef({r, in}) || b.sizes() != at::IntArrayRef({out, r}))
                                throw AdapterError(fmt::format(
                                    "{}: {} has lora_A {} and lora_B {}, but r={} and the layer is {}x{} (in x out): "
                                    "the adapter does not fit this model",
                                    weights_path.string(), name, fmt::join(a.sizes(), "x"), fmt::join(b.sizes(), "x"),
                                    r, in, out));
                              return std::make_pair(a, b);
                            });
  return loaded;
}

MergeResult merge_and_unload(model::FalconForCausalLM& model) {
  MergeResult result;
  for (auto& slot : model.linears()) {
    auto* lora = dynamic_cast<LoraLinear*>(slot.layer->get());
    if (!lora) continue;
    if (slot.name == "lm_head" && model.lm_head_tied()) {
      model.untie_lm_head();  // merge() then gives the head a new tensor; the embedding keeps the old
      result.untied_lm_head = true;
    }
    lora->merge();
    auto* dense = dynamic_cast<model::DenseLinear*>(&lora->base());
    if (!at::isfinite(dense->weight).all().item<bool>())
      throw AdapterError(fmt::format("merging the adapter into {} gives values that are not finite in {} (the "
                                     "weight plus B @ A * scaling overflows it); merge in a wider dtype (bf16 or "
                                     "fp32)",
                                     slot.name, c10::toString(dense->weight.scalar_type())));
    *slot.layer = lora->release_base();
    result.modules.push_back(slot.name);
  }
  return result;
}

}  // namespace autotrain::lora
