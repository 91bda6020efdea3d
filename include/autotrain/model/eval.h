// `autotrain eval`: mean loss and perplexity of a model over a dataset cut into blocks, the way
// AutoTrain's default trainer cuts its training data (rows tokenized and concatenated, blocks of
// block_size tokens, the remainder dropped). No LibTorch in this header: the CLI includes it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace autotrain::model {

class FalconForCausalLM;
struct LoadOptions;

// A problem with the command line (exit code 2) rather than with the run.
class EvalUsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct EvalOptions {
  std::string model;                  // folder or Hugging Face cache id
  std::string adapter;                // PEFT adapter folder (needs load_model, see below)
  bool load_in_4bit = false;          // quantize the base to NF4 while loading (needs load_model)
  bool double_quant = false;          // with load_in_4bit: quantize the statistics too (USE_DOUBLE_QUANT)
  // How to load the model folder. Empty: plain load_falcon. The QLoRA layer provides one that
  // handles adapters and 4-bit bases (autotrain/lora/qlora_loading.h), which this module cannot
  // depend on.
  std::function<std::unique_ptr<FalconForCausalLM>(const std::filesystem::path&, const LoadOptions&)> load_model;
  std::filesystem::path data;         // .jsonl / .json / .csv
  std::string text_column = "text";
  std::optional<int64_t> block_size;  // default min(1024, max_position_embeddings); capped at the latter
  std::string dtype = "fp32";         // fp32 | fp16 | bf16
  std::string device = "auto";        // auto | cpu | cuda
  int64_t tokens_per_batch = 4096;    // blocks are evaluated several at a time, up to this many tokens
};

struct EvalResult {
  double loss = 0;        // mean over all predicted tokens of all blocks
  double perplexity = 0;  // exp(loss)
  int64_t tokens = 0;     // predicted tokens: (block_size - 1) per block, less those labelled -100
  int64_t blocks = 0;
  int64_t block_size = 0;
  std::string model_dir;
  std::string device;
  std::vector<std::string> warnings;  // for the user, before the result (e.g. a capped block size)
};

// The token stream `eval` scores: ids and, position for position, the labels to predict (-100:
// not scored). Rows without labels score every token.
struct EvalTokens {
  std::vector<int64_t> ids;
  std::vector<int64_t> labels;
};

// Like read_eval_tokens, with labels: a pre-tokenized row may carry `labels` (as many as its
// `input_ids`; -100 marks a token that is not scored, e.g. a prompt under completion-only
// training) and `attention_mask` (positions with 0 are padding, dropped from the stream).
EvalTokens read_eval_rows(const std::filesystem::path& data, const std::string& text_column,
                          const std::filesystem::path& tokenizer_dir, std::optional<int64_t> vocab_size = std::nullopt);

// Token ids of every row of `data`, concatenated in file order. A row is taken from its
// `input_ids` list when it has one (pre-tokenized data), else its `text_column` is tokenized with
// the tokenizer found in `tokenizer_dir`. Errors name the file and line, including an id at or
// above `vocab_size` (when given: the model's vocabulary).
std::vector<int64_t> read_eval_tokens(const std::filesystem::path& data, const std::string& text_column,
                                      const std::filesystem::path& tokenizer_dir,
                                      std::optional<int64_t> vocab_size = std::nullopt);

// Throws EvalUsageError for bad options, ModelError / std::runtime_error for failures.
EvalResult run_eval(const EvalOptions& options);

}  // namespace autotrain::model
