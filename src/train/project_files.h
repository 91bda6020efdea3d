// The files `train` leaves in the project folder besides the adapter: training_params.json,
// the tokenizer files, the README.md model card, and metrics.jsonl.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autotrain/config/config.h"

namespace autotrain::train {

// The resolved config (typed values) without the HF token, written atomically.
void write_training_params(const std::filesystem::path& project, const config::Config& cfg);

// tokenizer.json or tokenizer.model, tokenizer_config.json, special_tokens_map.json from the
// model folder; special_tokens_map gets pad_token = eos_token when it has none (what AutoTrain
// sets and saves).
void write_tokenizer_files(const std::filesystem::path& model_dir, const std::filesystem::path& out_dir);

// The final files of the other kind of run in `project`: with `peft`, a full fine-tune's
// config.json and model weights; without, the adapter. Loaders take whatever they find
// (transformers applies an adapter_config.json beside model weights), so a project holds one
// kind only.
std::vector<std::filesystem::path> other_mode_files(const std::filesystem::path& project, bool peft);

// USE_PEFT of the run that last finished in `project` (its training_params.json), if any.
std::optional<bool> previous_run_used_peft(const std::filesystem::path& project);

// README.md: YAML front matter (base_model, library_name: peft, tags, datasets when DATA_PATH is
// a hub id), the training configuration and the final metrics.
void write_model_card(const std::filesystem::path& project, const config::Config& cfg, const nlohmann::json& results,
                      bool peft);

// Appends one JSON object per line; `truncate_after_step` drops lines of later steps first (a
// resumed run rewrites what the interrupted one logged after its checkpoint).
class MetricsLog {
 public:
  // Keeps the records of `path` (or, when given, of `history`: the log of the folder a run resumed
  // from) up to `truncate_after_step`.
  MetricsLog(std::filesystem::path path, int64_t truncate_after_step, const std::filesystem::path& history = {});
  void append(const nlohmann::ordered_json& record);

 private:
  std::filesystem::path path_;
};

}  // namespace autotrain::train
