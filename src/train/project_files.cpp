#include "project_files.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "autotrain/io/atomic_file.h"

namespace autotrain::train {

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A hub dataset id (org/name) rather than a local path.
bool is_hub_id(const std::string& s) {
  if (s.empty() || fs::exists(s) || s.front() == '.' || s.front() == '/') return false;
  const auto slash = s.find('/');
  return slash != std::string::npos && slash > 0 && s.find('/', slash + 1) == std::string::npos;
}

// A YAML scalar for the card's front matter: plain when it is a simple name (tiiuae/falcon-7b,
// as AutoTrain writes it), else double-quoted (JSON's quoting is YAML's), so that a path with
// ": ", " #", quotes or a leading symbol does not break the header the Hub parses.
std::string yaml_scalar(const std::string& s) {
  static const std::set<std::string> words = {"true", "false", "null", "yes", "no", "on", "off", "~"};
  std::string lower = s;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool plain = !s.empty() && std::isalnum(static_cast<unsigned char>(s.front())) && !words.count(lower) &&
                     std::all_of(s.begin(), s.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '/';
                     });
  return plain ? s : nlohmann::json(s).dump();
}

// Markdown inline code holding `text` whatever backticks it has (a fence longer than any run of
// them), and, in a table cell, with `|` escaped (GitHub tables split cells at it even in code).
std::string md_code(const std::string& text, bool table_cell = false) {
  size_t longest = 0, run = 0;
  for (char c : text) longest = std::max(longest, run = c == '`' ? run + 1 : 0);
  const std::string fence(longest + 1, '`');
  const bool pad = !text.empty() && (text.front() == '`' || text.back() == '`');
  std::string body = pad ? " " + text + " " : text;
  if (table_cell)
    for (size_t at = body.find('|'); at != std::string::npos; at = body.find('|', at + 2)) body.insert(at, "\\");
  return fence + body + fence;
}

}  // namespace

void write_training_params(const fs::path& project, const config::Config& cfg) {
  nlohmann::ordered_json e = cfg.to_json()["effective"];
  e.erase("HF_TOKEN");
  const auto or_null = [&](const char* key) {
    return e[key].is_string() && e[key].get<std::string>().empty() ? nlohmann::ordered_json() : e[key];
  };
  // AutoTrain 0.6.44's LLMTrainingParams fields, as its training_params.json holds them (tools
  // that read that file find the run there), then this program's whole config by its own keys.
  nlohmann::ordered_json p;
  p["model"] = e["MODEL_NAME"];
  p["project_name"] = e["AUTOTRAIN_PROJECT_NAME"];
  p["data_path"] = e["DATA_PATH"];
  p["train_split"] = e["TRAIN_SPLIT"];
  p["valid_split"] = or_null("VALID_SPLIT");
  p["text_column"] = e["TEXT_COLUMN"];
  p["lr"] = e["LEARNING_RATE"];
  p["epochs"] = e["NUM_EPOCHS"];
  p["batch_size"] = e["BATCH_SIZE"];
  p["warmup_ratio"] = e["WARMUP_RATIO"];
  p["gradient_accumulation"] = e["GRADIENT_ACCUMULATION"];
  p["optimizer"] = e["OPTIMIZER"];
  p["scheduler"] = e["SCHEDULER"];
  p["weight_decay"] = e["WEIGHT_DECAY"];
  p["max_grad_norm"] = e["MAX_GRAD_NORM"];
  p["seed"] = e["SEED"];
  p["add_eos_token"] = e["ADD_EOS_TOKEN"];
  p["block_size"] = e["BLOCK_SIZE"];
  p["use_peft"] = e["USE_PEFT"];
  p["lora_r"] = e["LORA_R"];
  p["lora_alpha"] = e["LORA_ALPHA"];
  p["lora_dropout"] = e["LORA_DROPOUT"];
  p["logging_steps"] = e["LOGGING_STEPS"];
  p["evaluation_strategy"] = e["EVAL_STRATEGY"];
  p["save_total_limit"] = e["SAVE_TOTAL_LIMIT"];
  p["save_strategy"] = e["SAVE_STRATEGY"];
  p["auto_find_batch_size"] = false;
  p["fp16"] = cfg.get_bool("USE_FP16") || cfg.get_string("MIXED_PRECISION") == "fp16";
  p["use_int4"] = e["USE_INT4"];
  p["use_int8"] = false;
  p["model_max_length"] = e["MODEL_MAX_LENGTH"];
  p["repo_id"] = or_null("REPO_ID");
  p["trainer"] = e["TRAINER"];
  p["target_modules"] = or_null("TARGET_MODULES");
  p["merge_adapter"] = e["MERGE_ADAPTER"];
  p["push_to_hub"] = e["PUSH_TO_HUB"];
  p["token"] = nullptr;
  p["log"] = "none";
  p["disable_gradient_checkpointing"] = !cfg.get_bool("GRADIENT_CHECKPOINTING");
  p["autotrain_config"] = std::move(e);
  io::write_file_atomic(project / "training_params.json", p.dump(4) + "\n");
}

void write_tokenizer_files(const fs::path& model_dir, const fs::path& out_dir) {
  for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json"})
    if (fs::exists(model_dir / name)) io::write_file_atomic(out_dir / name, read_text(model_dir / name));
  nlohmann::ordered_json map = nlohmann::ordered_json::object();
  if (fs::exists(model_dir / "special_tokens_map.json")) {
    try {
      map = nlohmann::ordered_json::parse(read_text(model_dir / "special_tokens_map.json"));
    } catch (const nlohmann::json::exception&) {
      map = nlohmann::ordered_json::object();
    }
  }
  if (!map.contains("eos_token") && fs::exists(model_dir / "tokenizer_config.json")) {
    try {
      auto tc = nlohmann::json::parse(read_text(model_dir / "tokenizer_config.json"));
      if (tc.contains("eos_token")) map["eos_token"] = tc["eos_token"];
    } catch (const nlohmann::json::exception&) {
    }
  }
  if (!map.contains("pad_token") && map.contains("eos_token")) map["pad_token"] = map["eos_token"];
  io::write_file_atomic(out_dir / "special_tokens_map.json", map.dump(2) + "\n");
}

std::vector<fs::path> other_mode_files(const fs::path& project, bool peft) {
  std::vector<fs::path> out;
  std::error_code ec;
  auto add = [&](const fs::path& p) {
    if (fs::is_regular_file(p, ec)) out.push_back(p);
  };
  if (!peft) {
    for (const char* name : {"adapter_model.safetensors", "adapter_config.json"}) add(project / name);
    return out;
  }
  for (const char* name : {"config.json", "model.safetensors", "model.safetensors.index.json"}) add(project / name);
  for (const auto& entry : fs::directory_iterator(project, ec)) {
    const std::string name = entry.path().filename().string();
    // save_falcon's shards: model-00001-of-00002.safetensors
    if (name.starts_with("model-") && name.ends_with(".safetensors") && name.find("-of-") != std::string::npos)
      add(entry.path());
  }
  return out;
}

std::optional<bool> previous_run_used_peft(const fs::path& project) {
  try {
    const auto params = nlohmann::json::parse(read_text(project / "training_params.json"));
    // "use_peft" since the file holds AutoTrain's fields; "USE_PEFT" in files of earlier versions.
    for (const char* key : {"use_peft", "USE_PEFT"})
      if (params.contains(key) && params[key].is_boolean()) return params[key].get<bool>();
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

void write_model_card(const fs::path& project, const config::Config& cfg, const nlohmann::json& results, bool peft) {
  const std::string model = cfg.get_string("MODEL_NAME");
  const std::string data = cfg.get_string("DATA_PATH");
  std::string card = "---\n";
  // The Hub refuses a card whose base_model is not a model id (a local path: "not valid. Use a
  // model id"), which would fail PUSH_TO_HUB and upload after the whole run; a local base is
  // named in the text instead.
  if (is_hub_id(model)) card += fmt::format("base_model: {}\n", yaml_scalar(model));
  if (peft) card += "library_name: peft\n";
  card += "tags:\n- autotrain\n- text-generation\n";
  if (peft) card += "- peft\n";
  if (is_hub_id(data)) card += fmt::format("datasets:\n- {}\n", yaml_scalar(data));
  card += "---\n\n";
  card += fmt::format("# {}\n\n", fs::path(cfg.get_string("AUTOTRAIN_PROJECT_NAME")).filename().string());
  card += fmt::format("Fine-tuned from {} on {} with autotrain (C++){}.\n\n", md_code(model), md_code(data),
                      peft ? ", as a LoRA adapter in PEFT format" : "");
  card += "## Results\n\n| metric | value |\n|---|---|\n";
  for (const auto& [k, v] : results.items()) card += fmt::format("| {} | {} |\n", k, v.dump());
  card += "\n## Training configuration\n\n| key | value |\n|---|---|\n";
  nlohmann::ordered_json effective = cfg.to_json()["effective"];
  effective.erase("HF_TOKEN");
  for (const auto& [k, v] : effective.items())
    if (!v.is_null() && !(v.is_string() && v.get<std::string>().empty()))
      card += fmt::format("| {} | {} |\n", k, md_code(v.dump(), /*table_cell=*/true));
  if (peft) {
    // JSON's string quoting is valid Python for any path.
    const std::string path = nlohmann::json(project.string()).dump();
    card += "\n## Usage\n\n```python\nfrom peft import AutoPeftModelForCausalLM\n"
            "from transformers import AutoTokenizer\n\n";
    card += fmt::format("model = AutoPeftModelForCausalLM.from_pretrained({})\n", path);
    card += fmt::format("tokenizer = AutoTokenizer.from_pretrained({})\n```\n", path);
  }
  io::write_file_atomic(project / "README.md", card);
}

MetricsLog::MetricsLog(fs::path path, int64_t truncate_after_step, const fs::path& history) : path_(std::move(path)) {
  const fs::path& source = history.empty() ? path_ : history;
  if (!fs::exists(source)) return;
  std::istringstream in(read_text(source));
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      auto j = nlohmann::json::parse(line);
      if (truncate_after_step >= 0 && j.value("step", int64_t{0}) <= truncate_after_step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      // a line cut short by a crash: dropped
    }
  }
  io::write_file_atomic(path_, kept);
}

void MetricsLog::append(const nlohmann::ordered_json& record) {
  std::ofstream out(path_, std::ios::app | std::ios::binary);
  out << record.dump() << "\n";
  out.flush();
}

}  // namespace autotrain::train
