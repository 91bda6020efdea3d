// `autotrain merge`. See merge_command.h.
#include "autotrain/lora/merge_command.h"

#include <stdexcept>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "autotrain/lora/lora.h"
#include "autotrain/model/falcon_config.h"
#include "autotrain/model/loader.h"
#include "autotrain/model/model_dir.h"
#include "autotrain/model/model_folder.h"

namespace autotrain::lora {

namespace {

// transformers 5's save_pretrained default (max_shard_size "50GB", decimal): Falcon-7B in fp16 is
// one model.safetensors, as PEFT + save_pretrained write it.
constexpr uint64_t kMaxShardBytes = 50'000'000'000;

at::ScalarType merge_dtype(const std::string& name) {
  if (name == "fp16") return at::kHalf;
  if (name == "bf16") return at::kBFloat16;
  if (name == "fp32") return at::kFloat;
  throw std::invalid_argument(fmt::format("--dtype {}: use fp16 (as AutoTrain merges), bf16 or fp32", name));
}

const char* config_dtype_name(at::ScalarType t) {
  return t == at::kHalf ? "float16" : t == at::kBFloat16 ? "bfloat16" : "float32";
}

}  // namespace

MergeCommandResult run_merge_command(const MergeCommandOptions& o) {
  // Everything that can be refused is checked before the base is read (minutes for 7B).
  if (o.out.empty()) throw std::invalid_argument("--out is required");
  const at::ScalarType dtype = merge_dtype(o.dtype);
  model::check_output_folder(model::output_folder(o.out));
  // Without --model, the base the adapter names (train writes MODEL_NAME there, as PEFT writes the
  // base's name_or_path).
  std::string base = o.model;
  if (base.empty()) {
    try {
      const auto cfg = model::read_ordered_json(std::filesystem::path(o.adapter) / "adapter_config.json");
      if (cfg.contains("base_model_name_or_path") && cfg["base_model_name_or_path"].is_string())
        base = cfg["base_model_name_or_path"].get<std::string>();
    } catch (const model::ModelError& e) {
      throw std::invalid_argument(fmt::format("--adapter {}: {}; give a PEFT adapter folder", o.adapter, e.what()));
    }
    if (base.empty())
      throw std::invalid_argument(fmt::format("--adapter {}: its adapter_config.json names no base_model_name_or_path; "
                                              "give the base with --model",
                                              o.adapter));
  }
  model::ModelDir dir;
  try {
    dir = model::resolve_model_dir(base);
  } catch (const model::ModelError& e) {
    // A --model that names nothing is a command-line mistake.
    throw std::invalid_argument(o.model.empty()
                                    ? fmt::format("the adapter's base_model_name_or_path: {} (give the base with --model)",
                                                  e.what())
                                    : std::string(e.what()));
  }
  auto cfg_json = model::read_ordered_json(dir.path / "config.json");
  if (cfg_json.contains("quantization_config") && cfg_json["quantization_config"].is_object())
    throw std::invalid_argument(fmt::format(
        "--model {}: its weights are quantized (config.json has a quantization_config), and an adapter merged into "
        "them would be quantized again, losing what it learned; give the 16/32-bit base model (the one the adapter's "
        "base_model_name_or_path names)",
        dir.path.string()));
  model::FalconConfig cfg;
  try {
    cfg = model::FalconConfig::load(dir.path / "config.json");
  } catch (const model::ModelError& e) {
    throw std::invalid_argument(fmt::format("--model {}: {}", dir.path.string(), e.what()));  // e.g. not a Falcon
  }
  model::remote_code_files(dir.path, cfg_json);  // the written folder will need them
  // The adapter against the model's structure, before any weight is read: modules, shapes, options.
  {
    model::FalconForCausalLM skeleton(cfg);
    try {
      load_adapter(skeleton, o.adapter, /*warn=*/false);
    } catch (const AdapterError& e) {
      throw std::invalid_argument(fmt::format("--adapter {}: {}", o.adapter, e.what()));
    }
  }

  model::LoadOptions load;
  load.dtype = dtype;
  auto m = model::load_falcon(dir.path, load);
  try {
    load_adapter(*m, o.adapter);  // also compares a saved lm_head copy with the loaded head
  } catch (const AdapterError& e) {
    throw std::invalid_argument(fmt::format("--adapter {}: {}", o.adapter, e.what()));
  }
  const MergeResult merged = merge_and_unload(*m);

  MergeCommandResult r;
  r.model_dir = dir.path.string();
  r.modules = merged.modules;
  r.untied_lm_head = merged.untied_lm_head;
  for (auto& [name, t] : m->named_parameters()) {
    r.parameters += t->numel();
    r.bytes += static_cast<int64_t>(t->nbytes());
  }
  model::set_config_dtype(cfg_json, config_dtype_name(dtype));
  if (merged.untied_lm_head) cfg_json["tie_word_embeddings"] = false;
  model::write_model_folder(dir.path, o.out, cfg_json, "merge",
                            [&](const std::filesystem::path& tmp) { model::save_falcon_weights(*m, tmp, kMaxShardBytes); });
  return r;
}

}  // namespace autotrain::lora
