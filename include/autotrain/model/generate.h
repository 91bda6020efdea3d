// `autotrain generate` and `autotrain chat`: text from a model (+ a PEFT adapter, + a 4-bit
// base), greedy or sampled as transformers' `generate` does it, with the KV cache, streamed as it
// is produced. No LibTorch in this header: the CLI includes it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace autotrain::model {

class FalconForCausalLM;
struct LoadOptions;

// A problem with the command line or the prompt (exit code 2) rather than with the run.
class GenerateUsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// How the next token is chosen, as transformers' GenerationConfig names it. temperature 0 is
// greedy decoding (do_sample=False); above 0, the logits are divided by it, cut to the top_k
// best (0: no cut) and to the smallest set whose probability reaches top_p (1: no cut), in that
// order, and one token is drawn from the softmax.
//
// Before that (and before greedy's argmax too), transformers' logits processors, in its order:
// repetition_penalty (a token already in the prompt or the text has its score divided by it, or
// multiplied when negative), no_repeat_ngram_size (no n-gram of the sequence twice), min_length
// (no end of sequence before the prompt and the text have that many tokens) and min_new_tokens
// (nor before that many new tokens).
struct SamplingOptions {
  double temperature = 0.0;
  int64_t top_k = 50;  // transformers' default
  double top_p = 1.0;
  uint64_t seed = 0;   // the sampler's generator: the same seed gives the same text
  double repetition_penalty = 1.0;
  int64_t no_repeat_ngram_size = 0;
  int64_t min_length = 0;
  int64_t min_new_tokens = 0;
};

struct GenerateOptions {
  std::string model;    // folder or Hugging Face cache id
  std::string adapter;  // PEFT adapter folder (needs load_model)
  bool load_in_4bit = false;
  bool double_quant = false;
  std::string dtype = "fp32";  // fp32 | fp16 | bf16
  std::string device = "auto";
  // How to load the model folder; empty: plain load_falcon. The QLoRA layer provides one that
  // handles adapters and 4-bit bases (autotrain/lora/qlora_loading.h).
  std::function<std::unique_ptr<FalconForCausalLM>(const std::filesystem::path&, const LoadOptions&)> load_model;
};

struct GenerateResult {
  std::string text;                // the new text (special tokens skipped), cut before a stop string
  std::vector<int64_t> prompt_ids;
  std::vector<int64_t> ids;        // the new tokens
  std::string finish_reason;       // "eos", "stop" (a stop string), or "length"
  double seconds = 0;              // prompt + new tokens
  double first_token_seconds = 0;  // the prompt's forward pass and the first token
};

// A loaded model and its tokenizer, ready to continue prompts.
class Generator {
 public:
  // Loads the model (and adapter) and the model folder's tokenizer. Throws GenerateUsageError for
  // bad options, ModelError / TokenizerError / std::runtime_error for broken files.
  explicit Generator(const GenerateOptions& options);
  ~Generator();
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // Continues `prompt` (tokenized as transformers' tokenizer(prompt) does) by at most
  // `max_new_tokens` tokens; stops after an end-of-sequence token (eos_token_ids()) or when the
  // text comes to one of `stop`. `on_text`, when
  // given, receives the text as it becomes final (a character split across tokens, or what may be
  // the start of a stop string, waits for the next token). A prompt longer than the model's
  // context is an error; new tokens past it are capped, with a warning in warnings().
  GenerateResult generate(const std::string& prompt, int64_t max_new_tokens, const SamplingOptions& sampling,
                          const std::vector<std::string>& stop = {},
                          const std::function<void(std::string_view)>& on_text = {});

  // Token count of `text` as generate() would see it (for fitting a conversation in the context).
  int64_t count_tokens(const std::string& text) const;
  int64_t context_length() const;  // max_position_embeddings
  std::string device() const;
  std::string model_dir() const;
  // Sampling defaults from the model folder's generation_config.json (do_sample, temperature,
  // top_k, top_p), or transformers' defaults without one.
  SamplingOptions default_sampling() const;
  // The budget transformers' generate() takes from generation_config.json when the caller gives
  // none: its max_new_tokens, else max_length less the prompt's tokens (at least 1; only with a
  // `prompt`); nullopt when it sets neither.
  std::optional<int64_t> default_max_new_tokens(const std::string& prompt = {}) const;
  // generation_config.json settings that transformers would apply and this generator does not
  // (repetition_penalty, no_repeat_ngram_size, min_new_tokens, ...), as "key=value"; the
  // constructor warns about them.
  std::vector<std::string> ignored_generation_settings() const;
  // Notes for the user gathered while loading and generating (taken and cleared).
  std::vector<std::string> take_warnings();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// The model folder's end-of-sequence ids, as transformers takes them: generation_config.json's
// eos_token_id (a number or a list; none when it has none) when the folder has that file, else
// config.json's.
std::vector<int64_t> eos_token_ids(const std::filesystem::path& model_dir);

}  // namespace autotrain::model
