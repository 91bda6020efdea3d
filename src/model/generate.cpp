// Text generation: the prompt's forward pass fills the KV cache, then one token at a time, chosen
// as transformers' generate() chooses it (sampling.h), until an end-of-sequence token, a stop
// string or the token budget.
#include "autotrain/model/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <fmt/format.h>

#include "autotrain/device/device_choice.h"
#include "autotrain/io/json_text.h"
#include "autotrain/model/loader.h"
#include "autotrain/model/model_dir.h"
#include "autotrain/model/sampling.h"
#include "autotrain/tokenizer/tokenizer.h"
#include "beam_search.h"

namespace autotrain::model {

namespace fs = std::filesystem;

namespace {

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "fp32") return at::kFloat;
  if (s == "fp16") return at::kHalf;
  if (s == "bf16") return at::kBFloat16;
  throw GenerateUsageError(fmt::format("--dtype {}: expected fp32, fp16 or bf16", s));
}

// A JSON file of the model folder, or nothing when it is not there. A file that is there but
// broken is an error: a silently ignored generation_config.json would change the text.
std::optional<nlohmann::json> read_json_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::json j;
  try {
    j = io::parse_json_text(text.str());
  } catch (const std::exception& e) {
    throw ModelError(fmt::format("{}: not valid JSON ({}); fix or remove the file", path.string(), e.what()));
  }
  if (!j.is_object())
    throw ModelError(fmt::format("{}: holds {}, not a JSON object of settings; fix or remove the file", path.string(),
                                 j.type_name()));
  return j;
}

bool has_tokenizer(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "tokenizer.json", ec) || fs::is_regular_file(dir / "tokenizer.model", ec);
}

// How many bytes at the end of `text` may still change or be cut: an incomplete UTF-8 character
// (decoded as U+FFFD until its last byte comes) or the start of a stop string.
size_t unsettled_tail(const std::string& text, const std::vector<std::string>& stop) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  size_t partial = 0;
  while (text.size() >= partial + kReplacement.size() &&
         text.compare(text.size() - partial - kReplacement.size(), kReplacement.size(), kReplacement) == 0)
    partial += kReplacement.size();
  // Before the partial character, the longest start of a stop string (which that character may
  // continue) waits too.
  const std::string_view before = std::string_view(text).substr(0, text.size() - partial);
  size_t held = 0;
  for (const auto& s : stop)
    for (size_t n = std::min(s.size() - 1 + (partial > 0 ? 1 : 0), before.size()); n > held; --n)
      if (n <= s.size() && before.compare(before.size() - n, n, std::string_view(s).substr(0, n)) == 0) {
        held = n;
        break;
      }
  return partial + held;
}

}  // namespace

std::vector<int64_t> eos_token_ids(const fs::path& model_dir) {
  // As transformers loads a model: generation_config.json when the folder has one (its
  // eos_token_id, or none), else the one it derives from config.json.
  for (const char* name : {"generation_config.json", "config.json"}) {
    auto j = read_json_file(model_dir / name);
    if (!j) continue;
    if (!j->is_object() || !j->contains("eos_token_id") || (*j)["eos_token_id"].is_null()) return {};
    const auto& v = (*j)["eos_token_id"];
    std::vector<int64_t> ids;
    auto take = [&](const nlohmann::json& x) {
      if (!x.is_number_integer() || x.get<int64_t>() < 0)
        throw ModelError(fmt::format("{}: eos_token_id must be a token id or a list of them, got {}",
                                     (model_dir / name).string(), v.dump()));
      ids.push_back(x.get<int64_t>());
    };
    if (v.is_array())
      for (const auto& x : v) take(x);
    else
      take(v);
    return ids;
  }
  return {};
}

struct Generator::State {
  ModelDir dir;
  FalconConfig config;
  std::unique_ptr<FalconForCausalLM> model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::vector<int64_t> eos;
  at::Device device = at::kCPU;
  std::vector<std::string> warnings;
};

Generator::Generator(const GenerateOptions& o) : s_(std::make_unique<State>()) {
  if ((!o.adapter.empty() || o.load_in_4bit) && !o.load_model)
    throw GenerateUsageError("--adapter and --load-in-4bit need the QLoRA loader, which this build does not have");
  if (o.double_quant && !o.load_in_4bit)
    throw GenerateUsageError("--double-quant quantizes the 4-bit base's statistics: it needs --load-in-4bit");
  if (!o.adapter.empty() && !fs::exists(fs::path(o.adapter) / "adapter_config.json"))
    throw GenerateUsageError(
        fmt::format("--adapter {}: no adapter_config.json there; give a PEFT adapter folder", o.adapter));
  const at::ScalarType dtype = parse_dtype(o.dtype);
  try {
    s_->device = device::choose_device(o.device, "--device");
  } catch (const device::DeviceChoiceError& e) {
    throw GenerateUsageError(e.what());
  }
  // No cuDNN attention while generating: the KV cache grows by one position per token, and cuDNN
  // builds an execution plan for every new key length, ~1.2 ms of CPU per layer per token on an
  // H200 (39 of the 49 ms of a Falcon-7B fp16 token, LibTorch's profiler says). Flash attention,
  // or the unfused kernels, need no plan. Training keeps its choice: its shapes repeat.
  if (s_->device.is_cuda()) at::globalContext().setSDPUseCuDNN(false);
  try {
    s_->dir = resolve_model_dir(o.model);
  } catch (const ModelError& e) {
    throw GenerateUsageError(e.what());  // a --model that names nothing is a command-line mistake
  }
  s_->config = FalconConfig::load(s_->dir.path / "config.json");
  // The model folder's tokenizer, else the adapter's (a project folder after `train` has one).
  fs::path tokenizer_dir = s_->dir.path;
  if (!has_tokenizer(tokenizer_dir) && !o.adapter.empty() && has_tokenizer(o.adapter)) tokenizer_dir = o.adapter;
  if (!has_tokenizer(tokenizer_dir))
    throw GenerateUsageError(fmt::format("{}: no tokenizer.json or tokenizer.model{}; copy the model's tokenizer files "
                                         "there",
                                         s_->dir.path.string(), o.adapter.empty() ? "" : " (nor in the adapter folder)"));
  s_->tokenizer = tokenizer::load_tokenizer(tokenizer_dir);
  s_->eos = eos_token_ids(s_->dir.path);

  LoadOptions load;
  load.dtype = dtype;
  load.device = s_->device;
  s_->model = o.load_model ? o.load_model(s_->dir.path, load) : load_falcon(s_->dir.path, load);
  if (auto ignored = ignored_generation_settings(); !ignored.empty()) {
    std::string list;
    for (const auto& i : ignored) list += (list.empty() ? "" : ", ") + i;
    s_->warnings.push_back(fmt::format("{}: {} {} not applied here (transformers' generate() would apply {}), so the "
                                       "text can differ from transformers'",
                                       (s_->dir.path / "generation_config.json").string(), list,
                                       ignored.size() == 1 ? "is" : "are", ignored.size() == 1 ? "it" : "them"));
  }
}

Generator::~Generator() = default;

int64_t Generator::count_tokens(const std::string& text) const {
  return static_cast<int64_t>(s_->tokenizer->encode(text).size());
}
int64_t Generator::context_length() const { return s_->config.max_position_embeddings; }
std::string Generator::device() const { return s_->device.str(); }
std::string Generator::model_dir() const { return s_->dir.path.string(); }

std::vector<std::string> Generator::take_warnings() {
  std::vector<std::string> out;
  out.swap(s_->warnings);
  return out;
}

SamplingOptions Generator::default_sampling() const {
  SamplingOptions o;  // transformers' defaults: greedy; top_k 50 and top_p 1 when sampling
  const fs::path file = s_->dir.path / "generation_config.json";
  auto j = read_json_file(file);
  if (!j || !j->is_object()) return o;
  auto bad = [&](const char* key, const char* wanted) {
    return ModelError(fmt::format("{}: {} is {}, not {}; fix the file or remove the key", file.string(), key,
                                  (*j)[key].dump(), wanted));
  };
  // A null value is an unset one, as transformers reads it.
  auto present = [&](const char* key) { return j->contains(key) && !(*j)[key].is_null(); };
  if (present("do_sample") && !(*j)["do_sample"].is_boolean()) throw bad("do_sample", "true or false");
  auto number = [&](const char* key, double fallback) {
    if (!present(key)) return fallback;
    if (!(*j)[key].is_number()) throw bad(key, "a number");
    return (*j)[key].get<double>();
  };
  o.temperature = number("temperature", 1.0);
  o.top_p = number("top_p", 1.0);
  if (present("top_k")) {
    if (!(*j)["top_k"].is_number_integer() || (*j)["top_k"].get<int64_t>() < 0) throw bad("top_k", "a whole number");
    o.top_k = (*j)["top_k"].get<int64_t>();
  }
  o.repetition_penalty = number("repetition_penalty", 1.0);
  if (!(o.repetition_penalty > 0)) throw bad("repetition_penalty", "a number above 0");
  for (auto [key, field] : {std::pair{"no_repeat_ngram_size", &o.no_repeat_ngram_size},
                            std::pair{"min_length", &o.min_length}, std::pair{"min_new_tokens", &o.min_new_tokens}}) {
    if (!present(key)) continue;
    if (!(*j)[key].is_number_integer() || (*j)[key].get<int64_t>() < 0) throw bad(key, "a whole number, 0 or more");
    *field = (*j)[key].get<int64_t>();
  }
  if (o.temperature < 0 || !(o.top_p > 0 && o.top_p <= 1))
    throw ModelError(fmt::format("{}: temperature {} / top_p {} are out of range (temperature >= 0, 0 < top_p <= 1)",
                                 file.string(), o.temperature, o.top_p));
  // The rarer warpers and processors, read as transformers' GenerationConfig reads them.
  o.min_p = number("min_p", 0.0);
  if (!(o.min_p >= 0 && o.min_p <= 1)) throw bad("min_p", "a number from 0 to 1");
  o.typical_p = number("typical_p", 1.0);
  if (!(o.typical_p > 0 && o.typical_p <= 1)) throw bad("typical_p", "a number above 0, at most 1");
  o.epsilon_cutoff = number("epsilon_cutoff", 0.0);
  if (!(o.epsilon_cutoff >= 0 && o.epsilon_cutoff < 1)) throw bad("epsilon_cutoff", "a number from 0 to below 1");
  o.eta_cutoff = number("eta_cutoff", 0.0);
  if (!(o.eta_cutoff >= 0 && o.eta_cutoff < 1)) throw bad("eta_cutoff", "a number from 0 to below 1");
  o.encoder_repetition_penalty = number("encoder_repetition_penalty", 1.0);
  if (!(o.encoder_repetition_penalty > 0)) throw bad("encoder_repetition_penalty", "a number above 0");
  o.length_penalty = number("length_penalty", 1.0);
  if (present("num_beams")) {
    if (!(*j)["num_beams"].is_number_integer() || (*j)["num_beams"].get<int64_t>() < 1)
      throw bad("num_beams", "a whole number above 0");
    o.num_beams = (*j)["num_beams"].get<int64_t>();
  }
  if (present("early_stopping")) {
    const auto& v = (*j)["early_stopping"];
    if (v.is_boolean())
      o.early_stopping = v.get<bool>() ? SamplingOptions::EarlyStopping::kWhenFull : SamplingOptions::EarlyStopping::kHeuristic;
    else if (v == "never")
      o.early_stopping = SamplingOptions::EarlyStopping::kNever;
    else
      throw bad("early_stopping", "true, false or \"never\"");
  }
  if (present("renormalize_logits")) {
    if (!(*j)["renormalize_logits"].is_boolean()) throw bad("renormalize_logits", "true or false");
    o.renormalize_logits = (*j)["renormalize_logits"].get<bool>();
  }
  // Token ids: whole numbers below the model's vocabulary (transformers refuses others).
  const int64_t vocab = s_->config.vocab_size;
  auto token = [&](const char* key, const nlohmann::json& v) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab)
      throw bad(key, fmt::format("made of token ids (whole numbers below the vocabulary's {})", vocab).c_str());
    return v.get<int64_t>();
  };
  auto tokens = [&](const char* key, const nlohmann::json& v, bool may_be_empty = false) {
    if (!v.is_array() || (v.empty() && !may_be_empty)) throw bad(key, "a list of token ids");
    std::vector<int64_t> out;
    for (const auto& x : v) out.push_back(token(key, x));
    return out;
  };
  if (present("bad_words_ids")) {
    const auto& v = (*j)["bad_words_ids"];
    if (!v.is_array() || v.empty()) throw bad("bad_words_ids", "a list of lists of token ids");
    for (const auto& word : v) o.bad_words_ids.push_back(tokens("bad_words_ids", word));
  }
  if (present("sequence_bias")) {
    // As GenerationConfig saves it: [[[ids...], bias], ...].
    const auto& v = (*j)["sequence_bias"];
    if (!v.is_array() || v.empty()) throw bad("sequence_bias", "a list of [[token ids], bias] pairs");
    for (const auto& pair : v) {
      if (!pair.is_array() || pair.size() != 2 || !pair[1].is_number())
        throw bad("sequence_bias", "a list of [[token ids], bias] pairs");
      o.sequence_bias.emplace_back(tokens("sequence_bias", pair[0]), pair[1].get<double>());
    }
  }
  for (auto [key, field] : {std::pair{"suppress_tokens", &o.suppress_tokens},
                            std::pair{"begin_suppress_tokens", &o.begin_suppress_tokens}})
    if (present(key)) *field = tokens(key, (*j)[key], /*may_be_empty=*/true);
  if (present("forced_bos_token_id")) o.forced_bos_token_id = token("forced_bos_token_id", (*j)["forced_bos_token_id"]);
  if (present("forced_eos_token_id")) {
    const auto& v = (*j)["forced_eos_token_id"];
    o.forced_eos_token_id = v.is_array() ? tokens("forced_eos_token_id", v)
                                         : std::vector<int64_t>{token("forced_eos_token_id", v)};
  }
  // do_sample decides only whether the default is greedy: sampling asked for on the command line
  // (--temperature) still uses the file's top_k and top_p, as generate(do_sample=True) merges
  // its arguments over the model's generation config.
  if (!present("do_sample") || !(*j)["do_sample"].get<bool>()) o.temperature = 0;
  return o;
}

std::optional<int64_t> Generator::default_max_new_tokens(const std::string& prompt) const {
  const fs::path file = s_->dir.path / "generation_config.json";
  auto j = read_json_file(file);
  if (!j) return std::nullopt;
  auto whole = [&](const char* key) -> std::optional<int64_t> {
    if (!j->contains(key) || (*j)[key].is_null()) return std::nullopt;
    const auto& v = (*j)[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 1)
      throw ModelError(fmt::format("{}: {} is {}, not a whole number above 0; fix the file or remove the key",
                                   file.string(), key, v.dump()));
    return v.get<int64_t>();
  };
  // As transformers: max_new_tokens wins; else max_length counts the prompt too.
  if (auto n = whole("max_new_tokens")) return n;
  if (auto total = whole("max_length"); total && !prompt.empty())
    return std::max<int64_t>(1, *total - count_tokens(prompt));
  return std::nullopt;
}

std::vector<std::string> Generator::ignored_generation_settings() const {
  // generation_config.json keys that change what transformers' generate() produces and that
  // this generator does not apply, when set to something other than their neutral value.
  auto j = read_json_file(s_->dir.path / "generation_config.json");
  std::vector<std::string> out;
  if (!j || !j->is_object()) return out;
  auto differs = [&](const char* key, const nlohmann::json& neutral) {
    return j->contains(key) && !(*j)[key].is_null() && (*j)[key] != neutral;
  };
  for (auto [key, neutral] : std::initializer_list<std::pair<const char*, nlohmann::json>>{
           {"top_h", nullptr},
           {"exponential_decay_length_penalty", nullptr},
           {"num_beam_groups", 1},
           {"diversity_penalty", 0.0},
           {"penalty_alpha", nullptr},
           {"force_words_ids", nullptr},
           {"constraints", nullptr},
           {"guidance_scale", nullptr},
           {"num_return_sequences", 1},
           {"watermarking_config", nullptr},
           {"stop_strings", nullptr},  // --stop is this generator's way
           {"max_time", nullptr},
           {"token_healing", false},
           {"dola_layers", nullptr}})
    if (differs(key, neutral)) out.push_back(fmt::format("{}={}", key, (*j)[key].dump()));
  return out;
}

GenerateResult Generator::generate(const std::string& prompt, int64_t max_new_tokens, const SamplingOptions& sampling,
                                   const std::vector<std::string>& stop,
                                   const std::function<void(std::string_view)>& on_text) {
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  GenerateResult r;
  for (auto id : s_->tokenizer->encode(prompt)) r.prompt_ids.push_back(id);
  if (r.prompt_ids.empty())
    throw GenerateUsageError("the prompt is empty (it has no tokens); give some text to continue");
  const int64_t vocab = s_->config.vocab_size;
  for (int64_t id : r.prompt_ids)
    if (id >= vocab)
      throw GenerateUsageError(fmt::format("the prompt has token id {}, but the model's vocabulary has {} ids: the "
                                           "tokenizer is not this model's",
                                           id, vocab));
  const auto prompt_len = static_cast<int64_t>(r.prompt_ids.size());
  const int64_t context = s_->config.max_position_embeddings;
  // Positions 0..context-1 can be fed: the prompt and every new token but the last.
  if (prompt_len > context)
    throw GenerateUsageError(fmt::format("the prompt has {} tokens; the model takes at most {} "
                                         "(max_position_embeddings): shorten it",
                                         prompt_len, context));
  if (max_new_tokens > context - prompt_len + 1) {  // (not prompt + new: --max-new-tokens can be huge)
    s_->warnings.push_back(fmt::format("{} new tokens after a {}-token prompt would pass the model's context of {} "
                                       "tokens; generating at most {}",
                                       max_new_tokens, prompt_len, context, context - prompt_len + 1));
    max_new_tokens = context - prompt_len + 1;
  }
  for (const auto& s : stop)
    if (s.empty()) throw GenerateUsageError("a stop string is empty; give some text or leave it out");

  at::NoGradGuard no_grad;
  at::Generator rng = at::make_generator<at::CPUGeneratorImpl>(sampling.seed);
  // The text of new tokens: ids past the tokenizer's vocabulary (a model padded to 50304 rows over
  // a 50257-token tokenizer) have none, as transformers' decode leaves them out.
  auto text_of = [&](const std::vector<int64_t>& ids) {
    std::vector<tokenizer::TokenId> known;
    for (int64_t id : ids)
      if (s_->tokenizer->id_to_token(static_cast<tokenizer::TokenId>(id))) known.push_back(static_cast<tokenizer::TokenId>(id));
    return s_->tokenizer->decode(known, /*skip_special_tokens=*/true);
  };
  // Where the first stop string starts in `text`, not counting a trailing U+FFFD that stands for
  // a character still incomplete (`settled_only`: the next token can make it another character,
  // so a stop string holding U+FFFD would match what never appears).
  auto stop_at = [&](std::string_view text, bool settled_only) {
    size_t partial = 0;
    while (settled_only && text.size() >= partial + 3 && text.compare(text.size() - partial - 3, 3, "\xEF\xBF\xBD") == 0)
      partial += 3;
    const std::string_view settled_text = text.substr(0, text.size() - partial);
    size_t cut = std::string::npos;
    for (const auto& s : stop) cut = std::min(cut, settled_text.find(s));
    return cut;
  };

  if (sampling.num_beams > 1) {
    // Beam search: the best hypothesis is known only at the end, so the text comes at once.
    std::function<bool(const std::vector<int64_t>&)> reached_stop;
    if (!stop.empty())
      reached_stop = [&](const std::vector<int64_t>& ids) { return stop_at(text_of(ids), true) != std::string::npos; };
    BeamSearchResult best =
        beam_search(*s_->model, s_->device, r.prompt_ids, max_new_tokens, sampling, s_->eos, rng, reached_stop);
    r.ids = std::move(best.ids);
    r.first_token_seconds = std::chrono::duration<double>(Clock::now() - started).count();
    std::string text = text_of(r.ids);
    const bool eos = !r.ids.empty() && std::find(s_->eos.begin(), s_->eos.end(), r.ids.back()) != s_->eos.end();
    r.finish_reason = eos ? "eos" : "length";
    if (const size_t cut = stop_at(text, /*settled_only=*/false); cut != std::string::npos) {
      text.resize(cut);
      r.finish_reason = "stop";
    }
    if (on_text && !text.empty()) on_text(text);
    r.text = std::move(text);
    r.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return r;
  }

  KVCache cache;
  FalconInputs in;
  in.input_ids = at::tensor(r.prompt_ids, at::TensorOptions().dtype(at::kLong)).unsqueeze(0).to(s_->device);
  std::vector<int64_t> sequence = r.prompt_ids;  // what the logits processors look back on
  const SequenceState state{sequence, prompt_len, prompt_len + max_new_tokens, s_->eos};
  std::string text;
  std::string shown;  // what on_text got so far: a prefix of `text` unless the decoder rewrote it
  r.finish_reason = "length";
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    at::Tensor logits = s_->model->forward(in, &cache);
    // As generate(): the last position's logits in fp32, on the CPU here so that a seed draws
    // the same tokens on every device.
    at::Tensor last = logits.select(1, logits.size(1) - 1).select(0, 0).to(at::kFloat).to(at::kCPU).contiguous();
    apply_logits_processors(last, state, sampling);
    // Nothing left to choose from: transformers' sampling raises here (its greedy search takes
    // token 0, as if it had been chosen); either way the text would not be the model's.
    if (last.isnan().any().item<bool>())
      throw std::runtime_error(fmt::format(
          "the model's scores for new token {} are nan (an fp16 overflow, or broken weights); try --dtype bf16 or "
          "fp32",
          step + 1));
    if (!(last > -std::numeric_limits<float>::infinity()).any().item<bool>())
      throw GenerateUsageError(fmt::format(
          "no token is allowed at new token {}: the logits processors (suppress_tokens, begin_suppress_tokens, "
          "bad_words_ids, min_new_tokens, ...) gave every token probability 0; loosen them (in "
          "generation_config.json or on the command line)",
          step + 1));
    at::Tensor scores = sampling.temperature > 0 ? warp_logits(last.unsqueeze(0), sampling).squeeze(0) : last;
    const int64_t next = choose_token(renormalize_if_asked(scores, sampling), sampling, rng);
    sequence.push_back(next);
    if (step == 0) r.first_token_seconds = std::chrono::duration<double>(Clock::now() - started).count();
    r.ids.push_back(next);
    // The end-of-sequence token is part of the text, as in transformers' decode of the output
    // (it is a special token, skipped, in every real tokenizer).
    const bool eos = std::find(s_->eos.begin(), s_->eos.end(), next) != s_->eos.end();
    text = text_of(r.ids);
    // The whole text is searched: a character completed by this token can change the bytes
    // before it (U+FFFD placeholders become one character).
    if (const size_t cut = stop_at(text, /*settled_only=*/true); cut != std::string::npos) {
      text.resize(cut);
      r.finish_reason = "stop";
      break;
    }
    const size_t settled = text.size() - unsettled_tail(text, stop);
    if (on_text && settled > shown.size() && text.compare(0, shown.size(), shown) == 0) {
      on_text(std::string_view(text).substr(shown.size(), settled - shown.size()));
      shown.assign(text, 0, settled);
    }
    if (eos) {
      r.finish_reason = "eos";
      break;
    }
    in.input_ids = at::full({1, 1}, next, at::TensorOptions().dtype(at::kLong).device(s_->device));
  }
  if (r.finish_reason != "stop") {
    // The text is final now, a trailing U+FFFD included (the budget ended inside a character).
    if (const size_t cut = stop_at(text, /*settled_only=*/false); cut != std::string::npos) {
      text.resize(cut);
      r.finish_reason = "stop";
    }
  }
  if (on_text && text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0)
    on_text(std::string_view(text).substr(shown.size()));
  r.text = std::move(text);
  r.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return r;
}

}  // namespace autotrain::model
