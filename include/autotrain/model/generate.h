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
#include <utility>
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
// best (0: no cut), to the smallest set whose probability reaches top_p (1: no cut), then by
// min_p, typical_p, epsilon_cutoff and eta_cutoff, in that order, and one token is drawn from the
// softmax.
//
// Before that (and before greedy's argmax too), transformers' logits processors, in its order:
// sequence_bias, encoder_repetition_penalty (the prompt's tokens), repetition_penalty (a token
// already in the prompt or the text has its score divided by it, or multiplied when negative),
// no_repeat_ngram_size (no n-gram of the sequence twice), bad_words_ids, min_length (no end of
// sequence before the prompt and the text have that many tokens), min_new_tokens (nor before that
// many new tokens), forced_bos_token_id, forced_eos_token_id, suppress_tokens and
// begin_suppress_tokens; renormalize_logits takes the log-softmax last.
//
// num_beams above 1 is beam search (beam sampling when temperature > 0) as transformers'
// generate() runs it: the best num_beams continuations by summed log-probability, finished
// hypotheses ranked by score / new_tokens^length_penalty, stopping per early_stopping.
struct SamplingOptions {
  double temperature = 0.0;
  int64_t top_k = 50;  // transformers' default
  double top_p = 1.0;
  double min_p = 0.0;           // keep tokens at least min_p times as likely as the best (0: off)
  double typical_p = 1.0;       // locally typical sampling's mass (1: off)
  double epsilon_cutoff = 0.0;  // drop tokens less likely than this (0: off)
  double eta_cutoff = 0.0;      // the entropy-scaled cutoff of eta sampling (0: off)
  uint64_t seed = 0;   // the sampler's generator: the same seed gives the same text
  double repetition_penalty = 1.0;
  double encoder_repetition_penalty = 1.0;
  int64_t no_repeat_ngram_size = 0;
  int64_t min_length = 0;
  int64_t min_new_tokens = 0;
  std::vector<std::vector<int64_t>> bad_words_ids;  // token sequences that never complete
  std::vector<std::pair<std::vector<int64_t>, double>> sequence_bias;  // added to the score of a sequence's last token
  std::vector<int64_t> suppress_tokens;        // never generated
  std::vector<int64_t> begin_suppress_tokens;  // not as the first new token
  std::optional<int64_t> forced_bos_token_id;  // the token after a one-token prompt
  std::vector<int64_t> forced_eos_token_id;    // the last token the budget allows
  bool renormalize_logits = false;
  int64_t num_beams = 1;
  double length_penalty = 1.0;
  enum class EarlyStopping { kHeuristic, kWhenFull, kNever };  // early_stopping: false, true, "never"
  EarlyStopping early_stopping = EarlyStopping::kHeuristic;
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
  // the start of a stop string, waits for the next token; with beam search, the best hypothesis's
  // text comes once, at the end). A prompt longer than the model's context is an error; new
  // tokens past it are capped, with a warning in warnings().
  GenerateResult generate(const std::string& prompt, int64_t max_new_tokens, const SamplingOptions& sampling,
                          const std::vector<std::string>& stop = {},
                          const std::function<void(std::string_view)>& on_text = {});

  // Token count of `text` as generate() would see it (for fitting a conversation in the context).
  int64_t count_tokens(const std::string& text) const;
  int64_t context_length() const;  // max_position_embeddings
  std::string device() const;
  std::string model_dir() const;
  // Sampling defaults from the model folder's generation_config.json (do_sample, the warpers,
  // the logits processors, beam search), or transformers' defaults without one. A value
  // transformers refuses is a ModelError naming the file and the key.
  SamplingOptions default_sampling() const;
  // The budget transformers' generate() takes from generation_config.json when the caller gives
  // none: its max_new_tokens, else max_length less the prompt's tokens (at least 1; only with a
  // `prompt`); nullopt when it sets neither.
  std::optional<int64_t> default_max_new_tokens(const std::string& prompt = {}) const;
  // generation_config.json settings that transformers would apply and this generator does not
  // (diverse beam search, exponential_decay_length_penalty, ...), as "key=value"; the
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
