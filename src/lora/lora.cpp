// LoRA layers, injection and PEFT adapter files. See include/autotrain/lora/lora.h.
#include "autotrain/lora/lora.h"

#include <algorithm>
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

#include "autotrain/io/atomic_file.h"
#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/torch.h"

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

std::vector<std::string> split_list(const std::string& spec) {
  std::vector<std::string> out;
  std::stringstream in(spec);
  for (std::string item; std::getline(in, item, ',');) {
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
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
  std::vector<std::string> selected;
  if (spec == "all-linear") {
    // PEFT's all-linear: every linear layer except the output layer.
    for (const auto& n : names)
      if (n != "lm_head") selected.push_back(n);
    return selected;
  }
  std::vector<std::string> targets = spec.empty() ? std::vector<std::string>{"query_key_value"} : split_list(spec);
  std::set<std::string> chosen;
  for (const auto& t : targets) {
    bool any = false;
    for (const auto& n : names)
      if (peft_matches(n, t)) {
        chosen.insert(n);
        any = true;
      }
    if (!any) {
      std::set<std::string> shorts;
      for (const auto& n : names) shorts.insert(short_name(n));
      std::string list;
      for (const auto& s : shorts) list += (list.empty() ? "" : ", ") + s;
      throw AdapterError(fmt::format("TARGET_MODULES: '{}' matches no linear layer of this model; its layers are {} "
                                     "(or use all-linear)",
                                     t, list));
    }
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
  for (auto& [name, t] : model.named_parameters()) {
    if (!t->defined()) continue;
    if (trainable_only && !t->requires_grad()) continue;
    // A packed 4-bit weight holds two parameters per byte (PEFT counts Params4bit the same way).
    total += t->scalar_type() == at::kByte ? 2 * t->numel() : t->numel();
  }
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
  std::set<std::string> targets;
  for (size_t i = 0; i < lora.layers.size(); ++i) {
    const std::string key = std::string(kKeyPrefix) + lora.modules[i];
    tensors.emplace_back(key + ".lora_A.weight", lora.layers[i]->lora_A.detach().to(at::kCPU).contiguous());
    tensors.emplace_back(key + ".lora_B.weight", lora.layers[i]->lora_B.detach().to(at::kCPU).contiguous());
    targets.insert(short_name(lora.modules[i]));
  }
  safetensors::save_tensors(dir / "adapter_model.safetensors", tensors);

  // The fields PEFT writes (nlohmann's object keeps keys sorted, as json.dumps(sort_keys=True)).
  nlohmann::json cfg = {
      {"alpha_pattern", nlohmann::json::object()},
      {"auto_mapping", nullptr},
      {"base_model_name_or_path", base_model_name},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"layer_replication", nullptr},
      {"layers_pattern", nullptr},
      {"layers_to_transform", nullptr},
      {"loftq_config", nlohmann::json::object()},
      {"lora_alpha", options.alpha},
      {"lora_bias", false},
      {"lora_dropout", options.dropout},
      {"megatron_config", nullptr},
      {"megatron_core", "megatron.core"},
      {"modules_to_save", nullptr},
      {"peft_type", "LORA"},
      {"r", options.r},
      {"rank_pattern", nlohmann::json::object()},
      {"revision", nullptr},
      {"target_modules", std::vector<std::string>(targets.begin(), targets.end())},
      {"task_type", "CAUSAL_LM"},
      {"use_dora", false},
      {"use_rslora", options.rslora},
  };
  // PEFT writes integral alphas as integers (lora_alpha: 32).
  if (options.alpha == std::floor(options.alpha)) cfg["lora_alpha"] = static_cast<int64_t>(options.alpha);
  io::write_file_atomic(dir / "adapter_config.json", cfg.dump(2) + "\n");
}

LoadedAdapter load_adapter(model::FalconForCausalLM& model, const std::filesystem::path& dir) {
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
    std::ifstream in(config_path);
    cfg = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw AdapterError(fmt::format("{}: not valid JSON: {}", config_path.string(), e.what()));
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
  if (get("peft_type", std::string("LORA")) != "LORA")
    throw AdapterError(fmt::format("{}: peft_type {} is not supported (only LORA)", where, cfg["peft_type"].dump()));
  if (get("use_dora", false)) throw AdapterError(fmt::format("{}: DoRA adapters (use_dora) are not supported", where));
  if (get("fan_in_fan_out", false)) throw AdapterError(fmt::format("{}: fan_in_fan_out adapters are not supported", where));
  if (get("bias", std::string("none")) != "none" || get("lora_bias", false))
    throw AdapterError(fmt::format("{}: adapters with trained biases are not supported (bias must be \"none\")", where));
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (cfg.contains(key) && cfg[key].is_object() && !cfg[key].empty())
      throw AdapterError(fmt::format("{}: per-module {} is not supported", where, key));

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
    if (!is_a && !is_b)
      throw AdapterError(fmt::format("{}: tensor {} is not a LoRA A/B weight (embeddings, biases and modules_to_save "
                                     "are not supported)",
                                     weights_path.string(), info.name));
    std::string module = key.substr(0, key.size() - std::string(".lora_A.weight").size());
    if (!model_modules.count(module))
      throw AdapterError(fmt::format("{}: the adapter targets {}, which this {} model does not have; the adapter was "
                                     "made for another base model",
                                     weights_path.string(), module, "Falcon"));
    at::Tensor t = safetensors::tensor_view(file, info).to(at::kFloat).clone();
    (is_a ? by_module[module].first : by_module[module].second) = t;
  }
  if (by_module.empty()) throw AdapterError(fmt::format("{}: holds no LoRA weights", weights_path.string()));

  std::vector<std::string> modules;
  for (auto& slot : model.linears())
    if (by_module.count(slot.name)) modules.push_back(slot.name);
  std::set<std::string> targets;
  for (const auto& m : modules) targets.insert(short_name(m));
  for (const auto& t : targets) loaded.options.target_modules += (loaded.options.target_modules.empty() ? "" : ",") + t;

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

}  // namespace autotrain::lora
