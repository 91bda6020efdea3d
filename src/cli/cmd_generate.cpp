// autotrain generate --model M [--adapter A] --prompt S [...]: a prompt's continuation.
// autotrain chat --model M [--adapter A] [...]: a conversation in the tutorial's guanaco format.
// Argument parsing and the terminal only; the work is in autotrain/model/generate.h.
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <limits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "autotrain/lora/qlora_loading.h"
#include "autotrain/model/generate.h"
#include "autotrain/model/falcon_config.h"
#include "autotrain/model/model_dir.h"
#include "autotrain/model/model_folder.h"
#include "common.h"

namespace autotrain::cli {

namespace {

// The options both commands take: which model, and how tokens are chosen.
struct GenerationArgs {
  model::GenerateOptions model;
  int64_t max_new_tokens = 0;
  CLI::Option* max_new_tokens_option = nullptr;  // given on the command line, or not
  std::string prompt;  // generate's, for a generation_config max_length (chat: none)
  std::optional<double> temperature, top_p;
  std::optional<int64_t> top_k;
  uint64_t seed = 0;
  std::optional<double> repetition_penalty;
  std::optional<int64_t> no_repeat_ngram_size, min_new_tokens;
  std::optional<double> min_p, typical_p;
  std::optional<int64_t> num_beams;
};

CLI::Validator number_in(const char* what, double low, bool low_open, double high) {
  return CLI::Validator(
      [what, low, low_open, high](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !std::isfinite(v) || v < low || (low_open && v == low) || v > high)
          return fmt::format("'{}' is not {}", text, what);
        return {};
      },
      "NUMBER");
}

void add_generation_options(CLI::App* sub, GenerationArgs& a, int64_t default_new_tokens) {
  a.max_new_tokens = default_new_tokens;
  sub->add_option("--model", a.model.model,
                  "Model folder, or org/name in the Hugging Face cache (default: the config's MODEL_NAME with the "
                  "adapter its train wrote)")
      ->check(not_empty("--model runs/tiny-falcon"));
  sub->add_option("--adapter", a.model.adapter, "PEFT LoRA adapter folder to apply (e.g. a project folder after train)")
      ->check(not_empty("--adapter runs/tiny-tiny"));
  sub->add_flag("--load-in-4bit", a.model.load_in_4bit, "Quantize the base model to NF4 while loading (QLoRA)");
  sub->add_flag("--double-quant", a.model.double_quant, "With --load-in-4bit: double quantization");
  sub->add_option("--dtype", a.model.dtype, "Weights and activations: fp32 (default), fp16 or bf16")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  sub->add_option("--device", a.model.device, "auto (CUDA when available, default), cpu, cuda or cuda:N")
      ->check(not_empty("--device cpu"));
  a.max_new_tokens_option =
      sub->add_option("--max-new-tokens", a.max_new_tokens,
                      fmt::format("New tokens at most (default: the model's generation_config.json max_new_tokens, "
                                  "else {})",
                                  default_new_tokens))
          ->transform(positive_integer("--max-new-tokens 64"));
  sub->add_option("--temperature", a.temperature,
                  "0: greedy (the default, unless the model's generation_config.json samples); above 0: sample")
      ->check(number_in("a temperature of 0 or more (e.g. 0.7)", 0, false, 1e6));
  sub->add_option("--top-k", a.top_k, "When sampling: keep the k most likely tokens (default 50; 0 keeps all)")
      ->transform(whole_number("a whole number of tokens, 0 or more", 1000000000000ULL));
  sub->add_option("--top-p", a.top_p, "When sampling: keep the most likely tokens up to this probability (default 1)")
      ->check(number_in("a probability above 0 and at most 1 (e.g. 0.9)", 0, true, 1));
  sub->add_option("--min-p", a.min_p,
                  "When sampling: drop tokens less likely than this times the most likely one (default: "
                  "generation_config.json's, else 0: off)")
      ->check(number_in("a number from 0 to 1 (e.g. 0.05)", 0, false, 1));
  sub->add_option("--typical-p", a.typical_p,
                  "When sampling: locally typical sampling's probability mass (default: generation_config.json's, "
                  "else 1: off)")
      ->check(number_in("a probability above 0 and at most 1 (e.g. 0.95)", 0, true, 1));
  sub->add_option("--num-beams", a.num_beams,
                  "Above 1: beam search over this many hypotheses (beam sampling with --temperature); the text comes "
                  "at the end, not streamed (default: generation_config.json's, else 1)")
      ->transform(positive_integer("--num-beams 4"));
  sub->add_option("--seed", a.seed, "Seed of the sampler (default 0): the same seed gives the same text")
      ->transform(whole_number("a whole number, 0 or more (e.g. 42)", std::numeric_limits<uint64_t>::max()));
  sub->add_option("--repetition-penalty", a.repetition_penalty,
                  "Above 1 discourages tokens already in the prompt or the text (default: generation_config.json's, "
                  "else 1)")
      ->check(number_in("a number above 0 (e.g. 1.2)", 0, true, 1e6));
  sub->add_option("--no-repeat-ngram-size", a.no_repeat_ngram_size,
                  "N above 0: no N tokens in a row appear twice (default: generation_config.json's, else 0)")
      ->transform(whole_number("a whole number, 0 or more", 1000000));
  sub->add_option("--min-new-tokens", a.min_new_tokens,
                  "No end of sequence before this many new tokens (default: generation_config.json's, else 0)")
      ->transform(whole_number("a whole number, 0 or more", 1000000000000ULL));
}

// Without --model: what `train` of the config (-c, $AUTOTRAIN_CONFIG, ./falcon.env) made, as the
// tutorial's test.py meant to load it: MODEL_NAME with the project's adapter (USE_PEFT), or the
// project folder itself after full fine-tuning; 4-bit as USE_INT4 trained it.
void model_of_config(const GlobalOptions& g, model::GenerateOptions& o) {
  const config::Config cfg = load_config(g, /*required=*/true);
  const std::filesystem::path project = cfg.get_string("AUTOTRAIN_PROJECT_NAME");
  std::error_code ec;
  if (cfg.get_bool("USE_PEFT")) {
    if (o.adapter.empty()) {
      if (!std::filesystem::is_regular_file(project / "adapter_config.json", ec))
        throw model::GenerateUsageError(fmt::format(
            "no --model given, and the config's project folder {} holds no trained adapter (adapter_config.json): run "
            "`autotrain train` first, or give --model (and --adapter)",
            project.string()));
      o.adapter = project.string();
    }
    o.model = cfg.get_string("MODEL_NAME");
    o.load_in_4bit = o.load_in_4bit || cfg.get_bool("USE_INT4");
    o.double_quant = o.double_quant || (o.load_in_4bit && cfg.get_bool("USE_DOUBLE_QUANT"));
  } else {
    if (!std::filesystem::is_regular_file(project / "config.json", ec))
      throw model::GenerateUsageError(fmt::format(
          "no --model given, and the config's project folder {} holds no trained model (config.json): run `autotrain "
          "train` first, or give --model",
          project.string()));
    o.model = project.string();
  }
  spdlog::info("model {}{} (from {})", o.model, o.adapter.empty() ? "" : " with the adapter " + o.adapter,
               config_path(g));
}

// With --model, the config is not read: say so when one was given, as eval and merge do.
void warn_config_unused(const GlobalOptions& g) {
  if (!g.config_path.empty() || !g.sets.empty())
    spdlog::warn("--model is given, so the config is not read: -c/--set are ignored (leave --model out to use the "
                 "config's MODEL_NAME and project adapter)");
}

// The sampling the run uses: the model folder's defaults, then the options given.
model::SamplingOptions sampling_of(const GenerationArgs& a, const model::Generator& g) {
  model::SamplingOptions s = g.default_sampling();
  if (a.temperature) s.temperature = *a.temperature;
  if (a.top_k) s.top_k = *a.top_k;
  if (a.top_p) s.top_p = *a.top_p;
  s.seed = a.seed;
  if (a.repetition_penalty) s.repetition_penalty = *a.repetition_penalty;
  if (a.no_repeat_ngram_size) s.no_repeat_ngram_size = *a.no_repeat_ngram_size;
  if (a.min_new_tokens) s.min_new_tokens = *a.min_new_tokens;
  if (a.min_p) s.min_p = *a.min_p;
  if (a.typical_p) s.typical_p = *a.typical_p;
  if (a.num_beams) s.num_beams = *a.num_beams;
  if (s.temperature <= 0 && (a.top_k || a.top_p || a.min_p || a.typical_p))
    spdlog::warn("--top-k, --top-p, --min-p and --typical-p act only when sampling; decoding is {} (give "
                 "--temperature above 0)",
                 s.num_beams > 1 ? "beam search" : "greedy");
  if (s.min_new_tokens > a.max_new_tokens)
    spdlog::warn("min_new_tokens {} is above the {} new tokens allowed (--max-new-tokens): the text ends there, never "
                 "at an end of sequence",
                 s.min_new_tokens, a.max_new_tokens);
  return s;
}

// Runs `work` and maps the command's usage errors to exit code 2; other failures go to main.
template <class Work>
int guarded(Work&& work) {
  try {
    return work();
  } catch (const model::GenerateUsageError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return static_cast<int>(kExitUsage);
  }
}

void print_warnings(model::Generator& g) {
  for (const auto& w : g.take_warnings()) spdlog::warn("{}", w);
}

// The model (the options', else what the config's train made), loaded with its warnings said;
// and the token budget from its generation_config.json when --max-new-tokens is not given.
// --adapter without --model and without a config: the base the adapter names (train writes
// MODEL_NAME there, as PEFT writes the base's name_or_path), as `merge` takes it.
std::string base_of_adapter(const std::string& adapter) {
  const std::filesystem::path file = std::filesystem::path(adapter) / "adapter_config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw model::GenerateUsageError(fmt::format("--adapter {}: no adapter_config.json there; give a PEFT adapter "
                                                "folder (e.g. a project folder after train)",
                                                adapter));
  nlohmann::ordered_json cfg;
  try {
    cfg = model::read_ordered_json(file);
  } catch (const model::ModelError& e) {
    throw model::GenerateUsageError(fmt::format("--adapter {}: {}", adapter, e.what()));
  }
  const std::string base = cfg.is_object() && cfg.contains("base_model_name_or_path") &&
                                   cfg["base_model_name_or_path"].is_string()
                               ? cfg["base_model_name_or_path"].get<std::string>()
                               : std::string();
  if (base.empty())
    throw model::GenerateUsageError(fmt::format(
        "--adapter {}: {} names no base_model_name_or_path; give the base model with --model", adapter, file.string()));
  // A path as train recorded it (MODEL_NAME=./runs/x) is relative to the folder train ran in.
  if (!model::looks_like_repo_id(base) && !std::filesystem::exists(base, ec))
    throw model::GenerateUsageError(fmt::format(
        "--adapter {}: its base model {} (base_model_name_or_path) is not here; a relative path is relative to the "
        "folder train ran in: run from there, or give the base with --model",
        adapter, base));
  return base;
}

std::unique_ptr<model::Generator> open_generator(const GlobalOptions& g, GenerationArgs& a) {
  // Without --model, the config names the base (and 4-bit loading); only with no config at all
  // does an --adapter name it.
  bool named = false;
  const bool have_config = std::filesystem::exists(config_path(g, &named)) || named || !g.sets.empty();
  if (a.model.model.empty() && !a.model.adapter.empty() && !have_config) {
    a.model.model = base_of_adapter(a.model.adapter);
    spdlog::info("model {} (the adapter's base_model_name_or_path) with the adapter {}", a.model.model,
                 a.model.adapter);
  } else if (a.model.model.empty()) {
    model_of_config(g, a.model);
  } else {
    warn_config_unused(g);
  }
  lora::use_qlora_loading(a.model);
  auto gen = std::make_unique<model::Generator>(a.model);
  print_warnings(*gen);
  if (a.max_new_tokens_option->count() == 0)
    if (auto n = gen->default_max_new_tokens(a.prompt)) a.max_new_tokens = *n;
  return gen;
}

// The JSON object --json prints for one result (first the input line's "id", when it has one).
nlohmann::ordered_json result_json(const model::GenerateResult& r, const nlohmann::json* id = nullptr) {
  nlohmann::ordered_json j;
  if (id) j["id"] = *id;
  j["text"] = r.text;
  j["finish_reason"] = r.finish_reason;
  j["prompt_tokens"] = r.prompt_ids.size();
  j["new_tokens"] = r.ids.size();
  j["ids"] = r.ids;
  j["seconds"] = r.seconds;
  j["first_token_seconds"] = r.first_token_seconds;  // the prompt's forward pass and the first choice
  j["tokens_per_s"] = r.seconds > 0 ? static_cast<double>(r.ids.size()) / r.seconds : 0.0;
  return j;
}

void print_json_line(const nlohmann::ordered_json& j) {
  // Model output need not be valid UTF-8 (a token budget can end inside a character).
  fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  std::fflush(stdout);
}

// One prompt of a --jsonl file: its text and the "id" to echo (null when the line has none).
struct PromptLine {
  std::string prompt;
  nlohmann::json id;
  size_t lineno = 0;
};

// Every prompt of a --jsonl file ('-': stdin), read and checked before anything is generated,
// so that a mistake on line 900 does not come after an hour of work.
std::vector<PromptLine> read_prompt_lines(const std::string& path) {
  std::vector<JsonLine> json_lines;
  try {
    json_lines = read_json_lines(path, "{\"prompt\": ...}");
  } catch (const std::invalid_argument& e) {
    throw model::GenerateUsageError(e.what());
  }
  std::vector<PromptLine> lines;
  for (const auto& [lineno, j] : json_lines) {
    if (!j.is_object() || !j.contains("prompt") || !j["prompt"].is_string())
      throw model::GenerateUsageError(fmt::format(
          "{}:{}: expected an object with a string \"prompt\" (and optionally an \"id\"), e.g. {{\"id\": 1, "
          "\"prompt\": \"### Human: Hi### Assistant:\"}}",
          path, lineno));
    lines.push_back({j["prompt"].get<std::string>(), j.contains("id") ? j["id"] : nlohmann::json(), lineno});
  }
  if (lines.empty()) throw model::GenerateUsageError(fmt::format("--jsonl {}: holds no prompts", path));
  return lines;
}

// generate --jsonl: each prompt continued in turn (prompt n draws with --seed + n, so each line's
// text is what `generate --prompt P --seed S+n` gives), one JSON line per prompt as it is done.
int generate_each_line(const GlobalOptions& g, GenerationArgs& a, const std::string& path,
                       const std::vector<std::string>& stop) {
  const std::vector<PromptLine> lines = read_prompt_lines(path);
  const auto gen = open_generator(g, a);
  model::SamplingOptions sampling = sampling_of(a, *gen);
  // Prompts the model cannot take are said (with their line) before the first is generated.
  for (const auto& l : lines) {
    const int64_t tokens = gen->count_tokens(l.prompt);
    if (tokens == 0)
      throw model::GenerateUsageError(fmt::format("{}:{}: the prompt is empty (it has no tokens)", path, l.lineno));
    if (tokens > gen->context_length())
      throw model::GenerateUsageError(fmt::format("{}:{}: the prompt has {} tokens; the model takes at most {} "
                                                  "(max_position_embeddings): shorten it",
                                                  path, l.lineno, tokens, gen->context_length()));
  }
  const bool budget_given = a.max_new_tokens_option->count() > 0;
  int64_t new_tokens = 0;
  double seconds = 0;
  for (size_t n = 0; n < lines.size(); ++n) {
    const auto& l = lines[n];
    sampling.seed = a.seed + n;
    const int64_t budget = budget_given ? a.max_new_tokens : gen->default_max_new_tokens(l.prompt).value_or(a.max_new_tokens);
    const model::GenerateResult r = gen->generate(l.prompt, budget, sampling, stop);
    for (const auto& w : gen->take_warnings()) spdlog::warn("{}:{}: {}", path, l.lineno, w);
    print_json_line(result_json(r, l.id.is_null() ? nullptr : &l.id));
    new_tokens += static_cast<int64_t>(r.ids.size());
    seconds += r.seconds;
  }
  spdlog::info("{} prompts, {} new tokens in {:.2f} s ({:.1f} tokens/s) on {}", lines.size(), new_tokens, seconds,
               seconds > 0 ? static_cast<double>(new_tokens) / seconds : 0.0, gen->device());
  return static_cast<int>(kExitOk);
}

}  // namespace

Subcommand add_generate_command(CLI::App& app, GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("generate", "Generate text from a prompt");
  auto a = std::make_shared<GenerationArgs>();
  auto prompt = std::make_shared<std::string>();
  auto stop = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  add_generation_options(sub, *a, 128);
  auto jsonl = std::make_shared<std::string>();
  auto* prompt_option = sub->add_option("--prompt", *prompt, "The text to continue; - reads it from standard input");
  auto* jsonl_option =
      sub->add_option("--jsonl", *jsonl,
                      "Continue every prompt of this file of {\"prompt\": ..., \"id\": ...} lines ('-' = stdin) "
                      "and print one --json line per prompt; prompt n samples with --seed + n")
          ->check(not_empty("--jsonl prompts.jsonl"));
  prompt_option->excludes(jsonl_option);
  sub->add_option("--stop", *stop, "End the text where this string appears (repeatable; the string is left out)")
      ->allow_extra_args(false)
      ->check(not_empty("--stop '### Human:'"));
  sub->add_flag("--json", *json,
                "Print {\"text\", \"finish_reason\", \"prompt_tokens\", \"new_tokens\", \"ids\", \"seconds\", "
                "\"first_token_seconds\", \"tokens_per_s\"} instead of streaming the text");
  return {sub, [&g, a, prompt, stop, json, jsonl, prompt_option] {
            return guarded([&] {
              if (!jsonl->empty()) return generate_each_line(g, *a, *jsonl, *stop);
              if (prompt_option->count() == 0)
                throw model::GenerateUsageError(
                    "generate needs --prompt TEXT (- reads it from stdin) or --jsonl FILE (one {\"prompt\": ...} per "
                    "line)");
              std::string text = *prompt;
              if (text == "-") {
                text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
                // The newline that ends the input (`echo ... |`) is not part of the prompt, as
                // the shell's $(...) drops it.
                if (text.ends_with("\r\n")) text.resize(text.size() - 2);
                else if (text.ends_with('\n')) text.pop_back();
              }
              a->prompt = text;
              const auto gen = open_generator(g, *a);
              const model::SamplingOptions sampling = sampling_of(*a, *gen);
              std::function<void(std::string_view)> stream;
              if (!*json)
                stream = [](std::string_view piece) {
                  std::fwrite(piece.data(), 1, piece.size(), stdout);
                  std::fflush(stdout);
                };
              const model::GenerateResult r = gen->generate(text, a->max_new_tokens, sampling, *stop, stream);
              print_warnings(*gen);
              const auto n = static_cast<double>(r.ids.size());
              const double rate = r.seconds > 0 ? n / r.seconds : 0.0;
              if (*json) {
                print_json_line(result_json(r));
              } else {
                fmt::print("\n");
                std::fflush(stdout);  // the text's line before the log line, also in `2>&1`
                spdlog::info("{} new tokens in {:.2f} s ({:.1f} tokens/s, first after {:.2f} s) on {}; stopped by {}",
                             r.ids.size(), r.seconds, rate, r.first_token_seconds, gen->device(), r.finish_reason);
              }
              return static_cast<int>(kExitOk);
            });
          }};
}

Subcommand add_chat_command(CLI::App& app, GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("chat", "Interactive chat with a model (the guanaco format the tutorial trains on)");
  auto a = std::make_shared<GenerationArgs>();
  auto user_tag = std::make_shared<std::string>("### Human:");
  auto assistant_tag = std::make_shared<std::string>("### Assistant:");
  add_generation_options(sub, *a, 256);
  sub->add_option("--user-tag", *user_tag, "What starts a user turn (default '### Human:')")
      ->check(not_empty("--user-tag '### Human:'"));
  sub->add_option("--assistant-tag", *assistant_tag, "What starts a reply (default '### Assistant:')")
      ->check(not_empty("--assistant-tag '### Assistant:'"));
  auto json = std::make_shared<bool>(false);
  sub->add_flag("--json", *json,
                "One JSON line per message instead of streamed text: {\"reply\", \"finish_reason\", \"new_tokens\"} "
                "(replies can hold newlines)");
  return {sub, [&g, a, user_tag, assistant_tag, json] {
            return guarded([&] {
              const auto gen = open_generator(g, *a);
              model::SamplingOptions sampling = sampling_of(*a, *gen);
              const bool terminal = isatty(STDIN_FILENO) != 0;
              if (terminal)
                fmt::print(stderr, "chat with {}{} on {}: /reset starts over, /exit or Ctrl-D ends\n", gen->model_dir(),
                           a->model.adapter.empty() ? "" : " + " + a->model.adapter, gen->device());
              // The conversation so far, as the training rows hold it: "### Human: q### Assistant: a".
              std::vector<std::string> turns;
              uint64_t replies = 0;  // in this conversation (since the start or /reset)
              std::string line;
              for (;;) {
                if (terminal) fmt::print(stderr, "you> ");
                if (!std::getline(std::cin, line)) break;
                if (!line.empty() && line.back() == '\r') line.pop_back();
                const auto first = line.find_first_not_of(" \t");
                if (first == std::string::npos) continue;
                line = line.substr(first, line.find_last_not_of(" \t") - first + 1);
                if (line == "/exit" || line == "/quit") break;
                if (line == "/reset") {
                  turns.clear();
                  replies = 0;
                  if (terminal) fmt::print(stderr, "(the conversation starts over)\n");
                  continue;
                }
                // A mistyped command (/rest) is not a question: answering it would also keep the
                // conversation the user meant to reset. "/" alone or "/ text" is a message.
                if (line.size() > 1 && line[0] == '/' && line.find_first_of(" \t") == std::string::npos &&
                    std::isalpha(static_cast<unsigned char>(line[1]))) {
                  spdlog::error("unknown command {}: the commands are /reset, /exit and /quit (a message that starts "
                                "with '/' needs a space in it)",
                                line);
                  continue;
                }
                const std::string ask = fmt::format("{} {}{}", *user_tag, line, *assistant_tag);
                // The oldest turns go when the conversation and the reply would pass the context.
                auto conversation = [&] {
                  std::string c;
                  for (const auto& t : turns) c += t;
                  return c + ask;
                };
                size_t dropped = 0;
                while (!turns.empty() && a->max_new_tokens > gen->context_length() - gen->count_tokens(conversation())) {
                  turns.erase(turns.begin());
                  ++dropped;
                }
                if (dropped > 0)
                  spdlog::info("the {} oldest turn{} left out: the conversation would pass the model's context of {} "
                               "tokens",
                               dropped, dropped == 1 ? " is" : "s are", gen->context_length());
                if (gen->count_tokens(conversation()) > gen->context_length()) {
                  spdlog::error("that message has {} tokens with its tags; the model takes {}: say it shorter",
                                gen->count_tokens(ask), gen->context_length());
                  // Its (empty) reply: piped, reply n of stdout answers message n.
                  if (*json)
                    fmt::print("{}\n", nlohmann::ordered_json{{"reply", ""}, {"finish_reason", "too_long"},
                                                              {"new_tokens", 0}}
                                           .dump());
                  else
                    fmt::print("\n");
                  std::fflush(stdout);
                  continue;
                }
                sampling.seed = a->seed + replies++;  // each reply its own draw, the same on every run
                bool started = false;            // the reply's leading spaces are the format's, not the model's
                std::function<void(std::string_view)> stream;
                if (!*json)
                  stream = [&](std::string_view piece) {
                    if (!started) {
                      const auto at = piece.find_first_not_of(" \n");
                      if (at == std::string_view::npos) return;
                      piece.remove_prefix(at);
                      started = true;
                    }
                    std::fwrite(piece.data(), 1, piece.size(), stdout);
                    std::fflush(stdout);
                  };
                const model::GenerateResult r =
                    gen->generate(conversation(), a->max_new_tokens, sampling, {*user_tag}, stream);
                if (*json) {
                  const auto first = r.text.find_first_not_of(" \n");
                  nlohmann::ordered_json j;
                  j["reply"] = first == std::string::npos ? std::string() : r.text.substr(first);
                  j["finish_reason"] = r.finish_reason;
                  j["new_tokens"] = r.ids.size();
                  fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
                } else {
                  fmt::print("\n");
                }
                std::fflush(stdout);
                print_warnings(*gen);
                turns.push_back(ask + r.text);
              }
              if (terminal) fmt::print(stderr, "\n");
              return static_cast<int>(kExitOk);
            });
          }};
}

}  // namespace autotrain::cli
