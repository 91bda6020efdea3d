// bitsandbytes 4-bit checkpoints: writing ours, reading theirs. See bnb_checkpoint.h.
#include "autotrain/quant/bnb_checkpoint.h"

#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autotrain/model/falcon_config.h"
#include "autotrain/model/loader.h"
#include "autotrain/model/model_dir.h"
#include "autotrain/model/model_folder.h"
#include "autotrain/quant/linear4bit.h"
#include "autotrain/quant/quantize_command.h"
#include "autotrain/safetensors/checkpoint.h"
#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/torch.h"

namespace autotrain::quant {

namespace {

constexpr const char* kStateSuffix = ".weight.quant_state.bitsandbytes__nf4";

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kFloat: return "float32";
    default: throw std::invalid_argument(fmt::format("no bitsandbytes name for dtype {}", c10::toString(t)));
  }
}

at::ScalarType dtype_from_name(const std::string& s, const std::string& where) {
  if (s == "float16") return at::kHalf;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "float32") return at::kFloat;
  throw model::ModelError(fmt::format("{}: dtype '{}' is not supported (float16, bfloat16, float32)", where, s));
}

// A finite double as Python's repr writes it (json.dumps uses float.__repr__): the shortest
// round-trip digits, which fmt's "{}" also gives, with the same switch to exponent notation
// (below 1e-4, from 1e16), but always with a fraction or an exponent: 2.0, not 2.
std::string python_float_repr(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// The JSON bitsandbytes packs into `weight.quant_state.bitsandbytes__nf4`: json.dumps with its
// default separators, keys in QuantState.as_dict order. `layer` names the layer in errors.
std::string quant_state_json(const Nf4Tensor& q, const std::string& layer) {
  std::string shape;
  for (size_t i = 0; i < q.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(q.shape[i]);
  std::string s = fmt::format(R"({{"quant_type": "nf4", "blocksize": {}, "dtype": "{}", "shape": [{}])", q.blocksize,
                              dtype_name(q.dtype), shape);
  if (q.nested) {
    // json.dumps would write Infinity/NaN, which is not JSON (and no reader takes it back).
    if (!std::isfinite(q.nested->offset))
      throw std::invalid_argument(fmt::format(
          "{}: the mean of its block absmax values (the double-quantization offset) is {}: the weight holds values "
          "too large for float32 statistics; quantize without --double-quant, or check the checkpoint for inf/nan",
          layer, q.nested->offset));
    s += fmt::format(R"(, "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": {})",
                     python_float_repr(static_cast<double>(q.nested->offset)));
  }
  return s + "}";
}

// Whether transformers leaves the module `name` unquantized for a `llm_int8_skip_modules` entry
// (quantizers_utils.should_convert_module): the entry is a suffix of the name ("dense" skips
// every attention output), or matches from its start, as a regular expression, up to a module
// boundary ("transformer.h.1" skips that layer's modules, not transformer.h.11's).
bool skipped_by(const std::string& name, const std::string& key) {
  if (name.ends_with(key)) return true;
  try {
    const std::regex re("(?:" + key + ")(?=\\.|$)");
    std::smatch m;
    if (std::regex_search(name, m, re, std::regex_constants::match_continuous)) return true;
    const std::regex dotted("(?:" + key + ")");
    return std::regex_search(name, m, dotted, std::regex_constants::match_continuous) && m.length(0) > 0 &&
           name[static_cast<size_t>(m.length(0)) - 1] == '.';
  } catch (const std::regex_error&) {
    return false;  // not a valid pattern: the suffix test was all it could mean
  }
}

// The linear layers stored as NF4: all but lm_head (kept 16-bit, as transformers keeps it) and
// those quantization_config.llm_int8_skip_modules names (stored as plain weights).
std::set<std::string> quantized_linear_names(model::FalconForCausalLM& m, const nlohmann::ordered_json& qc,
                                             const std::string& where) {
  std::vector<std::string> skip;
  if (auto it = qc.find("llm_int8_skip_modules"); it != qc.end() && !it->is_null()) {
    if (!it->is_array())
      throw model::ModelError(fmt::format("{}: quantization_config.llm_int8_skip_modules must be a list of module "
                                          "names, got {}",
                                          where, it->dump()));
    for (const auto& k : *it) {
      if (!k.is_string())
        throw model::ModelError(fmt::format("{}: quantization_config.llm_int8_skip_modules must hold module names, "
                                            "found {}",
                                            where, k.dump()));
      skip.push_back(k.get<std::string>());
    }
  }
  std::set<std::string> names;
  for (auto& slot : m.linears())
    if (slot.name != "lm_head" &&
        std::none_of(skip.begin(), skip.end(), [&](const std::string& k) { return skipped_by(slot.name, k); }))
      names.insert(slot.name);
  return names;
}


// Why a checkpoint cannot be quantized again, or "" when it holds plain 16/32-bit weights.
std::string already_quantized(const std::filesystem::path& dir) {
  auto cfg_path = dir / "config.json";
  if (!std::filesystem::exists(cfg_path)) return {};
  auto cfg = model::read_ordered_json(cfg_path);
  if (!cfg.contains("quantization_config") || !cfg["quantization_config"].is_object()) return {};
  const auto& q = cfg["quantization_config"];
  auto flag = [&](const char* a, const char* b) {
    return (q.contains(a) && q[a].is_boolean() && q[a].get<bool>()) || (q.contains(b) && q[b].is_boolean() && q[b].get<bool>());
  };
  const std::string method = q.contains("quant_method") && q["quant_method"].is_string() ? q["quant_method"].get<std::string>() : "";
  if (method == "bitsandbytes" && flag("load_in_4bit", "_load_in_4bit"))
    return "already quantized to 4 bits by bitsandbytes (quantization_config.load_in_4bit); it is used as it is (eval, "
           "or train with USE_PEFT=True)";
  if (method == "bitsandbytes" && flag("load_in_8bit", "_load_in_8bit"))
    return "already quantized to 8 bits by bitsandbytes (quantization_config.load_in_8bit)";
  return fmt::format("already quantized (quantization_config.quant_method {})",
                     method.empty() ? std::string("unknown") : "\"" + method + "\"");
}

}  // namespace

bool is_bnb_4bit_checkpoint(const std::filesystem::path& dir) {
  auto cfg_path = dir / "config.json";
  if (!std::filesystem::exists(cfg_path)) return false;
  auto cfg = model::read_ordered_json(cfg_path);
  // "quantization_config": null (or any non-object) is no quantization; value() would throw on it.
  if (!cfg.is_object() || !cfg.contains("quantization_config") || !cfg["quantization_config"].is_object()) return false;
  const auto& q = cfg["quantization_config"];
  auto flag = [&](const char* key) { return q.contains(key) && q[key] == true; };
  const bool bnb = q.contains("quant_method") && q["quant_method"] == "bitsandbytes";
  return bnb && (flag("load_in_4bit") || flag("_load_in_4bit"));
}

void save_bnb_4bit(model::FalconForCausalLM& model, const std::filesystem::path& source_dir,
                   const std::filesystem::path& out, const std::string& compute_dtype) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::optional<bool> double_quant;
  std::set<std::string> quantized;
  for (auto& slot : model.linears()) {
    auto* q4 = dynamic_cast<Linear4bit*>(slot.layer->get());
    if (!q4) continue;
    quantized.insert(slot.name);
    const Nf4Tensor& w = q4->weight();
    const std::string p = slot.name + ".weight";
    tensors.emplace_back(p, w.packed.to(at::kCPU).contiguous());
    if (w.nested) {
      tensors.emplace_back(p + ".absmax", w.nested->codes.to(at::kCPU).contiguous());
      tensors.emplace_back(p + ".nested_absmax", w.nested->absmax.to(at::kCPU).contiguous());
      tensors.emplace_back(p + ".nested_quant_map", w.nested->code_map.to(at::kCPU).contiguous());
    } else {
      tensors.emplace_back(p + ".absmax", w.absmax.to(at::kCPU).contiguous());
    }
    tensors.emplace_back(p + ".quant_map", at::tensor(std::vector<float>(nf4_levels().begin(), nf4_levels().end())));
    std::string js = quant_state_json(w, slot.name);
    tensors.emplace_back(slot.name + kStateSuffix,
                         at::from_blob(js.data(), {static_cast<int64_t>(js.size())}, at::kByte).clone());
    if (q4->bias().defined()) tensors.emplace_back(slot.name + ".bias", q4->bias().to(at::kCPU).contiguous());
    if (double_quant && *double_quant != w.nested.has_value())
      throw std::invalid_argument("save_bnb_4bit: layers mix double-quantized and plain statistics");
    double_quant = w.nested.has_value();
  }
  if (quantized.empty()) throw std::invalid_argument("save_bnb_4bit: the model has no 4-bit layers");
  at::ScalarType other_dtype = at::kFloat;
  for (auto& [name, t] : model.named_parameters()) {
    const auto dot = name.rfind('.');
    if (dot != std::string::npos && quantized.count(name.substr(0, dot))) continue;
    if (!t->defined()) continue;
    other_dtype = t->scalar_type();
    tensors.emplace_back(name, t->detach().to(at::kCPU).contiguous());
  }

  // Config: the source's, with the quantization the files now hold.
  auto cfg = model::read_ordered_json(source_dir / "config.json");
  cfg["quantization_config"] = {{"_load_in_4bit", true},
                                {"_load_in_8bit", false},
                                {"bnb_4bit_compute_dtype", compute_dtype},
                                {"bnb_4bit_quant_storage", "uint8"},
                                {"bnb_4bit_quant_type", "nf4"},
                                {"bnb_4bit_use_double_quant", double_quant.value_or(false)},
                                {"llm_int8_enable_fp32_cpu_offload", false},
                                {"llm_int8_has_fp16_weight", false},
                                {"llm_int8_skip_modules", nullptr},
                                {"llm_int8_threshold", 6.0},
                                {"load_in_4bit", true},
                                {"load_in_8bit", false},
                                {"quant_method", "bitsandbytes"}};
  model::set_config_dtype(cfg, dtype_name(other_dtype));
  model::write_model_folder(source_dir, out, cfg, "quantize", [&](const std::filesystem::path& tmp) {
    safetensors::save_tensors(tmp / "model.safetensors", tensors);
  });
}

std::unique_ptr<model::FalconForCausalLM> load_bnb_4bit(const std::filesystem::path& dir,
                                                        const model::LoadOptions& options) {
  const std::string where = dir.string();
  auto qcfg = model::read_ordered_json(dir / "config.json");
  if (!is_bnb_4bit_checkpoint(dir))
    throw model::ModelError(fmt::format("{}: config.json has no bitsandbytes 4-bit quantization_config", where));
  const auto& qc = qcfg["quantization_config"];
  if (qc.value("bnb_4bit_quant_type", "fp4") != "nf4")
    throw model::ModelError(fmt::format("{}: bnb_4bit_quant_type '{}' is not supported (only nf4)", where,
                                        qc.value("bnb_4bit_quant_type", "fp4")));
  if (qc.value("bnb_4bit_quant_storage", "uint8") != "uint8")
    throw model::ModelError(fmt::format("{}: bnb_4bit_quant_storage '{}' is not supported (only uint8)", where,
                                        qc.value("bnb_4bit_quant_storage", "")));

  auto cfg = model::FalconConfig::load(dir / "config.json");
  auto files = safetensors::find_checkpoint(dir);
  // The 16-bit embedding and head are tied as transformers ties them (see model/loader.h).
  const model::HeadTying tying = model::checkpoint_head_tying(cfg, files);
  if (tying == model::HeadTying::kUntied) cfg.tie_word_embeddings = false;
  auto m = std::make_unique<model::FalconForCausalLM>(cfg, options.device);
  std::vector<safetensors::SafetensorsFile> shards;
  std::map<std::string, std::pair<size_t, const safetensors::TensorInfo*>> index;
  for (const auto& p : files.shards) shards.push_back(safetensors::SafetensorsFile::open(p));
  for (size_t s = 0; s < shards.size(); ++s)
    for (const auto& info : shards[s].header().tensors) index[info.name] = {s, &info};
  std::set<std::string> used;
  auto take = [&](const std::string& name, bool required) -> at::Tensor {
    auto it = index.find(name);
    if (it == index.end()) {
      if (required) throw model::ModelError(fmt::format("{}: tensor {} is missing", where, name));
      return {};
    }
    used.insert(name);
    return safetensors::tensor_view(shards[it->second.first], *it->second.second);
  };

  const auto quantized = quantized_linear_names(*m, qc, where);
  for (auto& slot : m->linears()) {
    if (!quantized.count(slot.name)) continue;
    const std::string p = slot.name + ".weight";
    at::Tensor state = take(slot.name + kStateSuffix, true);
    nlohmann::json js;
    try {
      js = nlohmann::json::parse(std::string(static_cast<const char*>(state.data_ptr()), state.numel()));
    } catch (const std::exception& e) {
      throw model::ModelError(fmt::format("{}: {}{} is not valid JSON: {}", where, slot.name, kStateSuffix, e.what()));
    }
    if (js.value("quant_type", "") != "nf4")
      throw model::ModelError(fmt::format("{}: {} is quantized as '{}', only nf4 is supported", where, slot.name,
                                          js.value("quant_type", "")));
    Nf4Tensor q;
    const std::string state_name = slot.name + kStateSuffix;
    try {
      q.blocksize = js.at("blocksize").get<int64_t>();
      q.dtype = dtype_from_name(js.at("dtype").get<std::string>(), where);
      q.shape = js.at("shape").get<std::vector<int64_t>>();
      if (js.contains("nested_blocksize") && js["nested_blocksize"].get<int64_t>() != 256)
        throw model::ModelError(fmt::format("{}: {} has nested_blocksize {}; bitsandbytes writes 256", where, state_name,
                                            js["nested_blocksize"].dump()));
    } catch (const nlohmann::json::exception& e) {
      throw model::ModelError(fmt::format("{}: {} lacks a field or has one of the wrong type ({}); re-save the "
                                          "checkpoint with transformers + bitsandbytes or `autotrain quantize`",
                                          where, state_name, e.what()));
    }
    // Any power of two bitsandbytes accepts; a zero or odd value would divide by zero or misindex.
    if (q.blocksize < 32 || q.blocksize > 4096 || (q.blocksize & (q.blocksize - 1)) != 0)
      throw model::ModelError(fmt::format("{}: {} has blocksize {}; expected a power of two from 32 to 4096 (64 is "
                                          "bitsandbytes' default)",
                                          where, state_name, q.blocksize));
    const int64_t in = (*slot.layer)->in_features(), out = (*slot.layer)->out_features();
    if (q.shape != std::vector<int64_t>{out, in})
      throw model::ModelError(fmt::format("{}: {} has shape [{}, {}] in the checkpoint but [{}, {}] in config.json",
                                          where, slot.name, q.shape.at(0), q.shape.at(1), out, in));
    at::Tensor quant_map = take(p + ".quant_map", true).to(at::kFloat);
    if (!at::equal(quant_map, at::tensor(std::vector<float>(nf4_levels().begin(), nf4_levels().end()))))
      throw model::ModelError(fmt::format("{}: {}.quant_map is not the NF4 table", where, p));
    // Every size the kernels index by is checked here: a short tensor would be read past its end.
    const int64_t nblocks = (q.numel() + q.blocksize - 1) / q.blocksize;
    auto checked = [&](const std::string& name, at::ScalarType dtype, int64_t numel) {
      at::Tensor t = take(name, true);
      if (t.scalar_type() != dtype || t.numel() != numel)
        throw model::ModelError(fmt::format("{}: {} is {} with {} elements; a {}x{} NF4 weight with blocksize {} needs "
                                            "{} with {}",
                                            where, name, c10::toString(t.scalar_type()), t.numel(), q.shape.at(0),
                                            q.shape.at(1), q.blocksize, c10::toString(dtype), numel));
      return t;
    };
    q.packed = checked(p, at::kByte, (q.numel() + 1) / 2).to(options.device).reshape({-1, 1});
    if (js.contains("nested_offset")) {
      NestedAbsmax nest;
      nest.codes = checked(p + ".absmax", at::kByte, nblocks).to(options.device);
      nest.absmax = checked(p + ".nested_absmax", at::kFloat, (nblocks + 255) / 256).to(options.device);
      nest.code_map = checked(p + ".nested_quant_map", at::kFloat, 256).to(options.device);
      if (!js["nested_offset"].is_number())
        throw model::ModelError(fmt::format("{}: {} has a nested_offset that is not a number", where, state_name));
      nest.offset = js["nested_offset"].get<float>();
      q.nested = std::move(nest);
    } else {
      q.absmax = checked(p + ".absmax", at::kFloat, nblocks).to(options.device);
    }
    at::Tensor bias = take(slot.name + ".bias", cfg.bias);
    if (bias.defined()) bias = bias.to(options.device, options.dtype);
    *slot.layer = std::make_unique<Linear4bit>(std::move(q), bias);
  }
  std::map<std::string, std::vector<int64_t>> expected_shape;
  for (const auto& spec : model::falcon_parameter_specs(cfg)) expected_shape[spec.name] = spec.shape;
  for (auto& [name, t] : m->named_parameters()) {
    const auto dot = name.rfind('.');
    if (dot != std::string::npos && quantized.count(name.substr(0, dot))) continue;
    if (name == "lm_head.weight" && cfg.tie_word_embeddings) continue;
    const bool from_head = name == "transformer.word_embeddings.weight" && tying == model::HeadTying::kEmbeddingFromHead;
    at::Tensor stored = take(from_head ? "lm_head.weight" : name, true);
    // A layer config.json says is plain (llm_int8_skip_modules) but the file holds packed: the
    // shapes disagree, and the tensor must not replace the parameter.
    auto dims = [](at::IntArrayRef sizes) {
      std::string text;
      for (size_t i = 0; i < sizes.size(); ++i) text += (i ? "x" : "") + std::to_string(sizes[i]);
      return text;
    };
    const auto want = expected_shape.find(name);
    if ((want != expected_shape.end() && stored.sizes() != at::IntArrayRef(want->second)) ||
        !at::isFloatingType(stored.scalar_type()))
      throw model::ModelError(fmt::format("{}: tensor {} is {} {} in the checkpoint; the model needs {} floats{}", where,
                                          from_head ? "lm_head.weight" : name, c10::toString(stored.scalar_type()),
                                          dims(stored.sizes()),
                                          want == expected_shape.end() ? std::string("?") : dims(want->second),
                                          !index.count(name.substr(0, dot) + kStateSuffix) ? ""
                                          : name == "lm_head.weight"
                                              ? " (a 4-bit lm_head is not supported: quantize with "
                                                "llm_int8_skip_modules naming lm_head, as transformers' default does)"
                                              : " (it is stored 4-bit, but quantization_config.llm_int8_skip_modules "
                                                "names it)"));
    *t = stored.to(options.device, options.dtype, false, true);
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, _] : index)
    if (!used.count(name) && !(name == "lm_head.weight" && cfg.tie_word_embeddings)) unexpected.push_back(name);
  if (!unexpected.empty())
    throw model::ModelError(fmt::format("{}: unexpected tensors in the 4-bit checkpoint: {}{}", where,
                                        unexpected.front(), unexpected.size() > 1 ? fmt::format(" and {} more", unexpected.size() - 1) : ""));
  if (cfg.tie_word_embeddings) m->tie_lm_head();
  return m;
}

QuantizeCommandResult run_quantize_command(const QuantizeCommandOptions& o) {
  // Every check that can fail before the model is read and quantized (minutes for 7B).
  if (o.out.empty()) throw std::invalid_argument("--out is required");
  if (o.blocksize != 64 && o.blocksize != 128 && o.blocksize != 256)
    throw std::invalid_argument(fmt::format("--blocksize {}: use 64 (bitsandbytes' default), 128 or 256", o.blocksize));
  if (o.dtype != "auto" && o.dtype != "fp16" && o.dtype != "bf16" && o.dtype != "fp32")
    throw std::invalid_argument(fmt::format("--dtype {}: use auto, fp16, bf16 or fp32", o.dtype));
  model::check_output_folder(model::output_folder(o.out));
  model::ModelDir dir;
  try {
    dir = model::resolve_model_dir(o.model);
  } catch (const model::ModelError& e) {
    throw std::invalid_argument(e.what());  // a --model that names nothing is a command-line mistake (as in eval)
  }
  if (auto why = already_quantized(dir.path); !why.empty())
    throw std::invalid_argument(fmt::format("--model {}: {}, and cannot be re-quantized: give `autotrain quantize` the "
                                            "original 16/32-bit model",
                                            dir.path.string(), why));
  auto cfg = model::FalconConfig::load(dir.path / "config.json");
  std::string dtype = o.dtype;
  if (dtype == "auto") {
    // The released Falcon configs say bfloat16 (also the choice when config.json names none);
    // anything but the three float types is not a dtype to keep unquantized tensors in.
    if (cfg.torch_dtype.empty()) {
      // No dtype in config.json: the stored weights' own (transformers would load them as float32;
      // a silent bf16 would lose the precision of a float32 checkpoint).
      dtype = "bf16";
      const auto files = safetensors::find_checkpoint(dir.path);
      const auto shard = safetensors::SafetensorsFile::open(files.shards.front());
      for (const auto& info : shard.header().tensors) {
        if (info.dtype == safetensors::Dtype::F32) dtype = "fp32";
        else if (info.dtype == safetensors::Dtype::F16) dtype = "fp16";
        else if (info.dtype != safetensors::Dtype::BF16) continue;
        break;
      }
    } else if (cfg.torch_dtype == "bfloat16")
      dtype = "bf16";
    else if (cfg.torch_dtype == "float32")
      dtype = "fp32";
    else if (cfg.torch_dtype == "float16")
      dtype = "fp16";
    else
      throw std::invalid_argument(fmt::format("--dtype auto: {}'s config.json gives the dtype \"{}\", which is not "
                                              "float32, float16 or bfloat16; pass --dtype fp16, bf16 or fp32",
                                              dir.path.string(), cfg.torch_dtype));
  }
  const at::ScalarType t = dtype == "fp16" ? at::kHalf : dtype == "fp32" ? at::kFloat : at::kBFloat16;
  // The remote code the output will need is checked now too.
  model::remote_code_files(dir.path, model::read_ordered_json(dir.path / "config.json"));
  model::LoadOptions load;
  load.dtype = t;
  auto m = load_falcon_nf4(dir.path, load, o.blocksize, o.double_quant);  // quantized as it is read
  QuantizeCommandResult r;
  r.model_dir = dir.path.string();
  const int64_t element = at::elementSize(t);
  for (auto& slot : m->linears())
    if (auto* q4 = dynamic_cast<Linear4bit*>(slot.layer->get())) {
      ++r.layers;
      r.dense_bytes += q4->weight().numel() * element;
      r.nf4_bytes += q4->weight().packed_bytes() + q4->weight().statistics_bytes();
    }
  save_bnb_4bit(*m, dir.path, o.out, dtype_name(t));
  return r;
}

}  // namespace autotrain::quant
