// The one table of configuration keys. Defaults reproduce the tutorial's run (AutoTrain 0.6.44
// `autotrain llm` CLI defaults, see shared/docs/autotrain-behaviour.md §2.3) for keys its
// falcon.env leaves out.
#include <algorithm>

#include "autotrain/config/config.h"

namespace autotrain::config {

namespace {
constexpr double kInf = 1e300;
}

const std::vector<KeySpec>& config_keys() {
  using T = KeyType;
  static const std::vector<KeySpec> keys = {
      // --- the tutorial's falcon.env ------------------------------------------------------
      {"PROJECT_ID", T::String, "", "Suffix of the tutorial's project name (scripts/autotrain.sh exports it, default admin)"},
      {"AUTOTRAIN_PROJECT_NAME", T::String, "my_autotrain_llm", "Project folder: adapter, checkpoints, logs, token cache"},
      {"MODEL_NAME", T::String, "", "Base model: a local folder, or a Hugging Face id (org/name), downloaded into the cache if missing"},
      {"DATA_PATH", T::String, "", "Dataset: a .jsonl/.json/.csv/.txt (each also .gz/.zst/.bz2/.xz), .parquet, .arrow or .feather file, a folder of split files (a `save_to_disk` folder too), or a Hugging Face dataset id, downloaded into the cache if missing"},
      {"DATA_FILE", T::String, "./train.csv", "CSV that `data` writes (the tutorial's train.csv)"},
      {"TEXT_COLUMN", T::String, "text", "Column holding the training text (TEXT_COLUMM is accepted as an alias)"},
      {"LEARNING_RATE", T::Float, "3e-5", "Peak learning rate", 0, 10, true},
      {"NUM_EPOCHS", T::Int, "1", "Passes over the training data", 1, 1e6},
      {"BATCH_SIZE", T::Int, "2", "Micro-batch size per device", 1, 1e6},
      {"BLOCK_SIZE", T::Int, "-1", "Tokens per training block (-1: the tokenizer's model_max_length, at most 1024); a block predicts all but its first token, so at least 2", 2, 1e7, false, true},
      {"TRAINER", T::Choice, "default", "default: concatenate and cut into blocks; sft: EOS-joined packing", -kInf, kInf, false, false, {"default", "sft"}},
      {"WARMUP_RATIO", T::Float, "0.1", "Fraction of steps with linear warm-up", 0, 1},
      {"WEIGHT_DECAY", T::Float, "0.0", "AdamW decoupled weight decay", 0, 10},
      {"GRADIENT_ACCUMULATION", T::Int, "1", "Micro-batches per optimizer step", 1, 1e6},
      {"USE_FP16", T::Bool, "False", "fp16 autocast with dynamic loss scaling (same as MIXED_PRECISION=fp16)"},
      {"USE_PEFT", T::Bool, "False", "Train LoRA adapters instead of the whole model"},
      {"USE_INT4", T::Bool, "False", "Load the base weights as 4-bit NF4 (QLoRA)"},
      {"LORA_R", T::Int, "16", "LoRA rank", 1, 1e5},
      {"LORA_ALPHA", T::Float, "32", "LoRA alpha (scaling = alpha / r)", 0, 1e6, true},
      {"LORA_DROPOUT", T::Float, "0.05", "Dropout on the LoRA input", 0, 0.999999},
      {"PUSH_TO_HUB", T::Bool, "False", "Upload the project folder to the Hub repository `REPO_ID` after training (created private if new; token checked before training)"},
      {"HF_TOKEN", T::Secret, "", "Hugging Face token (never printed; `setup` stores it in $HF_HOME/token)"},
      {"REPO_ID", T::String, "", "Hub repository for PUSH_TO_HUB (user/name)"},
      // --- what AutoTrain, axolotl and TRL users expect ------------------------------------
      {"SEED", T::Int, "42", "Random seed (data order, LoRA init, dropout)", 0, 4294967295.0},
      {"TRAIN_SPLIT", T::String, "train", "Split of DATA_PATH to train on"},
      {"VALID_SPLIT", T::String, "", "Split of DATA_PATH to evaluate on (empty: none)"},
      {"VALID_FRACTION", T::Float, "0", "Fraction of the train split held out for evaluation (seeded)", 0, 0.9},
      {"EVAL_STRATEGY", T::Choice, "epoch", "When to evaluate (needs a validation set)", -kInf, kInf, false, false, {"epoch", "steps", "no"}},
      {"EVAL_STEPS", T::Int, "500", "Evaluate every N optimizer steps when EVAL_STRATEGY=steps", 1, 1e9},
      {"SAVE_STRATEGY", T::Choice, "epoch", "When to write checkpoint-<step>/", -kInf, kInf, false, false, {"epoch", "steps", "no"}},
      {"SAVE_STEPS", T::Int, "500", "Checkpoint every N optimizer steps when SAVE_STRATEGY=steps", 1, 1e9},
      {"SAVE_TOTAL_LIMIT", T::Int, "1", "Checkpoints kept (0: keep all)", 0, 1e6},
      {"LOAD_BEST_MODEL_AT_END", T::Bool, "True",
       "With a validation split: the final adapter is the saved checkpoint with the lowest eval_loss (as AutoTrain)"},
      {"LOGGING_STEPS", T::Int, "-1", "Log every N steps (-1: AutoTrain 0.6.44's rule, int(0.2 * blocks / BATCH_SIZE))", 1, 1e9, false, true},
      {"MAX_STEPS", T::Int, "-1", "Stop after N optimizer steps (-1: run all epochs)", 1, 1e12, false, true},
      {"WARMUP_STEPS", T::Int, "0", "Warm-up steps (overrides WARMUP_RATIO when > 0)", 0, 1e12},
      {"OPTIMIZER", T::Choice, "adamw_torch", "Optimizer: AdamW with 32-bit states (HF's names for it all run the same update)", -kInf, kInf, false, false,
       {"adamw_torch", "adamw", "adamw_torch_fused", "adamw_hf", "paged_adamw_32bit", "adamw_bnb_32bit"}},
      {"SCHEDULER", T::Choice, "linear", "Learning-rate schedule", -kInf, kInf, false, false, {"linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial"}},
      {"MAX_GRAD_NORM", T::Float, "1.0", "Gradient clipping norm (0: off)", 0, 1e9},
      {"TARGET_MODULES", T::String, "", "LoRA targets: empty (PEFT's Falcon default query_key_value), all-linear, or a comma list"},
      {"USE_RSLORA", T::Bool, "False", "Rank-stabilised LoRA scaling alpha/sqrt(r)"},
      {"USE_DOUBLE_QUANT", T::Bool, "False", "Quantize the NF4 absmax statistics too (double quantization)"},
      {"MIXED_PRECISION", T::Choice, "", "fp16 | bf16 | no (empty: fp16 when USE_FP16=True, else no)", -kInf, kInf, false, false, {"fp16", "bf16", "no"}},
      {"GRADIENT_CHECKPOINTING", T::Bool, "True", "Recompute activations per decoder layer in backward (less memory)"},
      {"ADD_EOS_TOKEN", T::Bool, "False", "Append EOS to every example (TRAINER=default)"},
      {"TRAIN_ON_COMPLETIONS_ONLY", T::Bool, "False", "Mask prompt tokens (label -100) up to the last RESPONSE_TEMPLATE"},
      {"RESPONSE_TEMPLATE", T::String, "", "Marker that starts the completion, e.g. '### Assistant:'"},
      {"INSTRUCTION_TEMPLATE", T::String, "", "Marker that starts a user turn, e.g. '### Human:': train on every answer of a multi-turn example"},
      {"TEXT_SAMPLE_BY", T::Choice, "line", "How a .txt file is cut into examples: line, paragraph (blank-line separated) or document (the whole file)", -kInf, kInf, false, false, {"line", "paragraph", "document"}},
      {"MODEL_MAX_LENGTH", T::Int, "1024", "The tokenizer's limit when its model_max_length is missing or above 2048 (AutoTrain's rule)", 2, 1e7},
      {"MERGE_ADAPTER", T::Bool, "False", "After training, also write the adapter merged into an fp16 copy of the base to `<project>/merged/` (as `autotrain merge`)"},
      {"DEVICE", T::String, "auto", "auto | cpu | cuda | cuda:N"},
  };
  return keys;
}

const KeySpec* find_key(std::string_view name) {
  for (const auto& k : config_keys())
    if (k.name == name) return &k;
  return nullptr;
}

const std::map<std::string_view, std::string_view>& key_aliases() {
  // The tutorial's falcon.env spells TEXT_COLUMN as TEXT_COLUMM.
  static const std::map<std::string_view, std::string_view> aliases = {{"TEXT_COLUMM", "TEXT_COLUMN"}};
  return aliases;
}

namespace {
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  return out;
}
}  // namespace

std::vector<std::string> suggest_keys(std::string_view name) {
  std::string wanted = upper(name);
  size_t budget = std::max<size_t>(2, wanted.size() / 4);
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& k : config_keys()) {
    size_t d = edit_distance(wanted, k.name);
    if (d <= budget) scored.emplace_back(d, std::string(k.name));
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (auto& [d, n] : scored) out.push_back(n);
  if (out.size() > 3) out.resize(3);
  return out;
}

}  // namespace autotrain::config
