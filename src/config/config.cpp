// Resolution of defaults < process environment < .env file < --set into typed values.
#include "autotrain/config/config.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "autotrain/io/utf8.h"

namespace autotrain::config {

namespace {

using io::invalid_utf8_at;

constexpr std::string_view kTokenPlaceholder = "hf_XXX";

// The environment variables a config file may set for the run (the tutorial's `set -a` exported
// every assignment): where the model and data are found, which GPUs are seen, the CUDA
// allocator's settings. Nothing that makes a program load code (AUTOTRAIN_CUDA_BACKEND,
// LD_PRELOAD, CUDA_INJECTION64_PATH, NCCL plugins) is taken from a file: parsing a config must
// never run anything. Nor where `setup` writes the token (HF_TOKEN_PATH): a config shared with
// others must not decide that.
constexpr std::string_view kExportable[] = {"HF_HOME",           "HF_HUB_CACHE",          "HUGGINGFACE_HUB_CACHE",
                                            "HF_HUB_OFFLINE",    "HF_DATASETS_CACHE",
                                            "XDG_CACHE_HOME",    "CUDA_VISIBLE_DEVICES",  "CUDA_DEVICE_ORDER",
                                            "PYTORCH_CUDA_ALLOC_CONF", "TOKENIZERS_PARALLELISM"};

bool is_exportable(std::string_view name) {
  for (auto n : kExportable)
    if (name == n) return true;
  return false;
}

// Names programs read from the environment (the Hugging Face libraries, CUDA, NCCL, OpenMP,
// PyTorch, SLURM, ...): in a config file they were meant for the environment.
bool is_environment_variable_name(std::string_view name) {
  static constexpr std::string_view kPrefixes[] = {"HF_",    "HUGGINGFACE_", "HUGGING_FACE_", "TRANSFORMERS_", "TOKENIZERS_",
                                                   "CUDA_",  "NCCL_",        "TORCH_",        "PYTORCH_",      "OMP_",
                                                   "MKL_",   "KMP_",         "XDG_",          "SLURM_",        "WANDB_",
                                                   "ACCELERATE_", "LD_",     "LC_"};
  static constexpr std::string_view kNames[] = {"PATH", "HOME", "TMPDIR", "LANG", "TZ", "MASTER_ADDR", "MASTER_PORT",
                                                "WORLD_SIZE", "RANK", "LOCAL_RANK", "AUTOTRAIN_CONFIG",
                                                "AUTOTRAIN_CUDA_BACKEND"};
  for (auto p : kPrefixes)
    if (name.starts_with(p)) return true;
  for (auto n : kNames)
    if (name == n) return true;
  return false;
}

std::string describe_range(const KeySpec& spec) {
  // Integers in full (10000000, not 1e+07); other numbers as short as they are exact.
  auto num = [&](double v) {
    return spec.type == KeyType::Int ? fmt::format("{}", static_cast<long long>(v)) : fmt::format("{:g}", v);
  };
  std::string range;
  bool has_min = spec.min > -1e299;
  bool has_max = spec.max < 1e299;
  if (has_min && has_max)
    range = fmt::format("{} {} {}, at most {}", spec.type == KeyType::Int ? "an integer" : "a number",
                        spec.min_exclusive ? "greater than" : "from", num(spec.min), num(spec.max));
  else if (has_min)
    range = fmt::format("{} {} {}", spec.type == KeyType::Int ? "an integer" : "a number",
                        spec.min_exclusive ? "greater than" : "of at least", num(spec.min));
  else
    range = spec.type == KeyType::Int ? "an integer" : "a number";
  if (spec.allow_minus_one) {
    // What -1 means differs per key.
    const std::string_view name = spec.name;
    range += name == "MAX_STEPS"       ? " (or -1: NUM_EPOCHS decides)"
             : name == "BLOCK_SIZE"    ? " (or -1: the tokenizer's model_max_length, at most 1024)"
             : name == "LOGGING_STEPS" ? " (or -1: AutoTrain's rule)"
                                       : " (or -1 for auto)";
  }
  return range;
}

std::string allowed(const KeySpec& spec) {
  switch (spec.type) {
    case KeyType::Bool:
      return "True or False (any case), or 1/0";
    case KeyType::Choice: {
      std::string s = "one of ";
      for (size_t i = 0; i < spec.choices.size(); ++i) s += (i ? ", " : "") + std::string(spec.choices[i]);
      return s;
    }
    case KeyType::Int:
    case KeyType::Float:
      return describe_range(spec);
    default:
      return "any text";
  }
}

bool in_range(const KeySpec& spec, double v) {
  if (spec.allow_minus_one && v == -1) return true;
  if (spec.min_exclusive ? !(v > spec.min) : !(v >= spec.min)) return false;
  return v <= spec.max;
}

// Converts `text` per the key's type; an error message (without the "KEY=value (source)"
// prefix) when it does not fit.
std::variant<Value, std::string> convert(const KeySpec& spec, const std::string& text) {
  switch (spec.type) {
    case KeyType::String:
      return Value{text};
    case KeyType::Secret: {
      // As `setup --token` takes it: blanks around a pasted token are dropped; one inside means
      // two words or a broken paste, which no Hugging Face token holds.
      const size_t first = text.find_first_not_of(" \t\r\n"), last = text.find_last_not_of(" \t\r\n");
      const std::string token = first == std::string::npos ? std::string() : text.substr(first, last - first + 1);
      if (token.empty() || token == kTokenPlaceholder) return Value{std::monostate{}};
      if (std::any_of(token.begin(), token.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; }))
        return std::string("has blanks or control characters inside (a token is one word; check what was pasted)");
      return Value{token};
    }
    case KeyType::Bool: {
      auto b = parse_bool(text);
      if (!b) return std::string("not a boolean");
      return Value{*b};
    }
    case KeyType::Choice:
      for (auto c : spec.choices)
        if (c == text) return Value{text};
      return std::string("not an allowed value");
    case KeyType::Int: {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno == ERANGE) return std::string("not an integer");
      if (!in_range(spec, static_cast<double>(v))) return std::string("out of range");
      return Value{static_cast<int64_t>(v)};
    }
    case KeyType::Float: {
      errno = 0;
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      // strtod also takes "nan", "inf" and hex floats; a config number is a plain decimal.
      bool plain = text.find_first_not_of("0123456789+-.eE") == std::string::npos;
      if (text.empty() || *end != '\0' || !plain || !std::isfinite(v)) return std::string("not a number");
      if (!in_range(spec, v)) return std::string("out of range");
      return Value{v};
    }
  }
  return std::string("unsupported type");
}

nlohmann::json to_json_value(const Value& v) {
  return std::visit(
      [](const auto& x) -> nlohmann::json {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, std::monostate>)
          return nullptr;
        else
          return x;
      },
      v);
}

}  // namespace

std::optional<bool> parse_bool(std::string_view text) {
  std::string lower(text);
  for (auto& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  if (lower == "true" || lower == "1") return true;
  if (lower == "false" || lower == "0") return false;
  return std::nullopt;
}

ConfigError::ConfigError(std::vector<ConfigProblem> problems, std::vector<Diagnostic> parse_errors,
                         std::vector<std::string> warnings)
    : std::runtime_error([&] {
        std::string all;
        auto line = [&all](std::string_view text, std::string_view more = {}) {
          if (!all.empty()) all += '\n';
          all.append(text).append(more);
        };
        for (const auto& d : parse_errors) line(d.format("error"));
        for (const auto& p : problems) line("error: ", p.message);
        return all;
      }()),
      problems_(std::move(problems)),
      parse_errors_(std::move(parse_errors)),
      warnings_(std::move(warnings)) {}

Config Config::resolve(const ResolveInputs& inputs) {
  Config cfg;
  cfg.config_file_ = inputs.config_file;
  std::vector<ConfigProblem> problems;

  // --set KEY=VALUE: visible to the file's expansions (as if exported before sourcing it)
  // and applied again after it, so the command line always wins.
  std::map<std::string, std::string> overrides;
  for (const auto& o : inputs.overrides) {
    size_t eq = o.find('=');
    std::string key = o.substr(0, eq);
    bool valid_name = !key.empty() && (std::isalpha(static_cast<unsigned char>(key[0])) || key[0] == '_') &&
                      key.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
    if (eq == std::string::npos || !valid_name) {
      problems.push_back({"", fmt::format("--set '{}': expected KEY=VALUE with KEY made of letters, digits and _ "
                                          "(e.g. --set LEARNING_RATE=1e-4)", mask_token_like(o))});
      continue;
    }
    overrides[key] = o.substr(eq + 1);
  }

  Environment start = inputs.environment;
  for (const auto& [k, v] : overrides) start[k] = v;

  EnvFileResult file_result;
  file_result.variables = start;
  if (inputs.config_file) {
    try {
      file_result = load_env_file(*inputs.config_file, start);
    } catch (const EnvFileError& e) {
      throw ConfigError(std::move(problems), e.errors());
    }
    // Without a severity word: whoever prints a warning adds its own "warning: ".
    for (const auto& w : file_result.warnings) cfg.warnings_.push_back(w.format(""));
  }
  auto& vars = file_result.variables;
  for (const auto& [k, v] : overrides) vars[k] = v;
  const std::string file_label = inputs.config_file.value_or("");

  // Where the value of `name` came from, and whether anything set it.
  auto provenance = [&](const std::string& name) -> std::pair<bool, std::string> {
    if (overrides.count(name)) return {true, "cli"};
    auto at = file_result.assigned_at.find(name);
    if (at != file_result.assigned_at.end()) return {true, fmt::format("{}:{}", file_label, at->second.line)};
    if (inputs.environment.count(name)) return {true, "env"};
    return {false, "default"};
  };

  // Aliases (TEXT_COLUMM): kept under their own name for `values`, read as the canonical key
  // when that one is not set, or set on a lower layer (default < env < file < --set): a
  // `--set TEXT_COLUMM=x` wins over the file's TEXT_COLUMN, as any --set does.
  auto layer = [](const std::string& source) {
    return source == "cli" ? 3 : source == "env" ? 1 : source == "default" ? 0 : 2;
  };
  std::map<std::string, std::string> alias_for_key;
  for (const auto& [alias, canonical] : key_aliases()) {
    std::string a(alias), c(canonical);
    auto [set, source] = provenance(a);
    if (!set) continue;
    if (size_t bad = invalid_utf8_at(vars[a]); bad != std::string_view::npos) {
      problems.push_back({a, fmt::format("{} ({}): the value is not valid UTF-8 (byte 0x{:02X} at offset {}); save the "
                                         "file as UTF-8",
                                         a, source, static_cast<unsigned char>(vars[a][bad]), bad)});
      continue;
    }
    cfg.alias_values_[a] = vars[a];
    cfg.alias_sources_[a] = source;
    auto [canonical_set, canonical_source] = provenance(c);
    // An empty alias means "the default" and overrides nothing: the tutorial's falcon.env always
    // has TEXT_COLUMM="", which must not undo a TEXT_COLUMN from the environment (bash: it doesn't).
    if (canonical_set && (layer(canonical_source) >= layer(source) || vars[a].empty())) {
      cfg.warnings_.push_back(fmt::format("{}: {} (the tutorial's spelling of {}) is ignored: {} is set too ({})", source,
                                          a, c, c, canonical_source));
      continue;
    }
    cfg.warnings_.push_back(
        canonical_set ? fmt::format("{}: {} is read as {} (the tutorial's spelling) and overrides {} ({}); prefer {}",
                                    source, a, c, c, canonical_source, c)
                      : fmt::format("{}: {} is read as {} (the tutorial's spelling); prefer {}", source, a, c, c));
    if (canonical_set && invalid_utf8_at(vars[c]) == std::string_view::npos) cfg.shadowed_values_[c] = vars[c];
    alias_for_key[c] = a;
  }

  for (const auto& spec : config_keys()) {
    std::string name(spec.name);
    Entry e;
    e.spec = &spec;
    auto [set, source] = provenance(name);
    if (alias_for_key.count(name)) {
      const std::string& alias = alias_for_key[name];
      set = true;
      source = cfg.alias_sources_[alias];
      e.raw = cfg.alias_values_[alias];
      e.alias = alias;
    } else if (set) {
      e.raw = vars[name];
    }
    e.is_set = set;
    e.source = source;
    if (size_t bad = invalid_utf8_at(e.raw); bad != std::string_view::npos) {
      problems.push_back({name, fmt::format("{} ({}): the value is not valid UTF-8 (byte 0x{:02X} at offset {}); save "
                                            "the file as UTF-8",
                                            name, source, static_cast<unsigned char>(e.raw[bad]), bad)});
      e.raw.clear();  // not shown, and the default stands in while the other keys are checked
    }
    // An empty value means "use the default", as the tutorial's script passes nothing then.
    std::string text = e.raw.empty() ? std::string(spec.default_value) : e.raw;
    if (text.empty()) {
      e.effective = spec.type == KeyType::Secret ? Value{std::monostate{}} : Value{std::string()};
    } else {
      auto converted = convert(spec, text);
      if (auto* err = std::get_if<std::string>(&converted)) {
        problems.push_back(
            {name, fmt::format("{}={} ({}): {}; expected {}", name, mask_token_like(e.raw), source, *err, allowed(spec))});
      } else {
        e.effective = std::get<Value>(converted);
      }
    }
    if (spec.type == KeyType::Secret && e.raw == kTokenPlaceholder)
      cfg.warnings_.push_back(fmt::format("{}: {} is the placeholder '{}'; treated as no token", source, name, kTokenPlaceholder));
    cfg.entries_.emplace(name, std::move(e));
  }

  // Unknown keys the user wrote: a warning with the nearest known names. Variables that come
  // only from the process environment are not the user's config, so they are not checked.
  auto warn_unknown = [&](const std::string& name, const std::string& where, const char* fate) {
    if (find_key(name) || key_aliases().count(name)) return;
    auto near = suggest_keys(name);
    std::string hint;
    for (size_t i = 0; i < near.size(); ++i) hint += (i ? ", " : "") + near[i];
    cfg.warnings_.push_back(near.empty() ? fmt::format("{}: unknown key {}; {}", where, name, fate)
                                         : fmt::format("{}: unknown key {}; {} (did you mean {}?)", where, name, fate, hint));
  };
  // Variables that are not keys. The exportable ones (HF_HOME, CUDA_VISIBLE_DEVICES, ...) reach
  // the environment, as under the tutorial's `set -a` (a --set of one wins, as for keys). A
  // variable the file only uses in expansions (PNAME in AUTOTRAIN_PROJECT_NAME=out/$PNAME) is no
  // misspelt key. Anything else is said to be ignored, with the nearest keys (HF_TOKN: did you
  // mean HF_TOKEN?), or, for another environment variable, that the shell must set it.
  auto not_a_key = [&](const std::string& name) { return !find_key(name) && !key_aliases().count(name); };
  auto exported = [&](const std::string& name) {
    if (!is_exportable(name)) return false;
    for (const auto& [n, v] : cfg.exports_)
      if (n == name) return true;
    cfg.exports_.emplace_back(name, vars.at(name));
    return true;
  };
  auto warn_ignored = [&](const std::string& name, const std::string& where) {
    if (suggest_keys(name).empty() && is_environment_variable_name(name))
      cfg.warnings_.push_back(fmt::format("{}: {} is not exported from a config file (only {} are); set it in the shell",
                                          where, name, fmt::join(kExportable, ", ")));
    else
      warn_unknown(name, where, "ignored");
  };
  for (const auto& name : file_result.assigned_names) {
    if (!not_a_key(name) || exported(name)) continue;
    if (!overrides.count(name) && !file_result.referenced.count(name))
      warn_ignored(name, fmt::format("{}:{}", file_label, file_result.assigned_at[name].line));
  }
  for (const auto& [name, v] : overrides)
    if (not_a_key(name) && !exported(name)) warn_ignored(name, "--set");

  // Cross-key rules. USE_FP16 (the tutorial's) and MIXED_PRECISION say the same thing. When both
  // are set and disagree, a --set of one wins over the other from the file or the environment
  // (`--set MIXED_PRECISION=bf16` on the tutorial's falcon.env, which sets USE_FP16=True, is
  // bf16); set in the same place, they are a conflict to resolve.
  Entry& fp16 = cfg.entries_.at("USE_FP16");
  Entry& mp = cfg.entries_.at("MIXED_PRECISION");
  if (std::holds_alternative<bool>(fp16.effective) && std::holds_alternative<std::string>(mp.effective)) {
    bool use_fp16 = std::get<bool>(fp16.effective);
    std::string precision = std::get<std::string>(mp.effective);
    const bool fp16_set = fp16.is_set && !fp16.raw.empty();
    if (precision.empty()) {
      mp.effective = std::string(use_fp16 ? "fp16" : "no");
    } else if (fp16_set && (use_fp16 != (precision == "fp16"))) {
      const bool mp_cli = mp.source == "cli", fp16_cli = fp16.source == "cli";
      if (mp_cli != fp16_cli) {
        const Entry& winner = mp_cli ? mp : fp16;
        const Entry& loser = mp_cli ? fp16 : mp;
        cfg.warnings_.push_back(fmt::format("{}={} (--set) overrides {}={} ({})", winner.spec->name, winner.raw,
                                            loser.spec->name, loser.raw, loser.source));
        if (mp_cli)
          fp16.effective = precision == "fp16";
        else
          mp.effective = std::string(use_fp16 ? "fp16" : "no");
      } else {
        problems.push_back({"MIXED_PRECISION",
                            fmt::format("MIXED_PRECISION={} ({}) conflicts with USE_FP16={} ({}); set one of them, "
                                        "or make them agree (USE_FP16=True means MIXED_PRECISION=fp16)",
                                        mp.raw, mp.source, fp16.raw, fp16.source)});
      }
    }
  }

  check_run_rules(cfg, problems);
  // Messages quote values, and a value may hold the token (LORA_R=$HF_TOKEN, a slip).
  for (auto& p : problems) p.message = cfg.redact(std::move(p.message));
  for (auto& w : cfg.warnings_) w = cfg.redact(std::move(w));
  if (!problems.empty()) throw ConfigError(std::move(problems), {}, std::move(cfg.warnings_));
  return cfg;
}

std::vector<std::string> Config::missing_run_inputs() const {
  std::vector<std::string> missing;
  if (get_string("MODEL_NAME").empty())
    missing.push_back("MODEL_NAME is empty: set it to a model folder or a Hugging Face id (org/name); `data` tokenizes "
                      "with its tokenizer, `train` fine-tunes it");
  if (get_string("DATA_PATH").empty())
    missing.push_back("DATA_PATH is empty: set it to a .jsonl/.json/.csv/.txt/.parquet/.arrow file, a folder of split "
                      "files, or a Hugging Face dataset id (org/name)");
  return missing;
}

// Rules between keys, and values this build cannot act on. They live here, not in the commands
// that read the keys, so that `setup` and `config` report every one of them in one run, and
// `data`/`train` refuse before any work rather than one problem per attempt.
void Config::check_run_rules(Config& cfg, std::vector<ConfigProblem>& problems) {
  auto is = [&](const char* key) -> const Entry& { return cfg.entries_.at(key); };
  auto flag = [&](const char* key) {
    const auto* b = std::get_if<bool>(&is(key).effective);
    return b && *b;
  };
  auto text = [&](const char* key) {
    const auto* t = std::get_if<std::string>(&is(key).effective);
    return t ? *t : std::string();
  };
  auto where = [&](const char* key) { return is(key).source; };

  // PUSH_TO_HUB: the repository must be named (the tutorial's falcon.env has a placeholder there).
  if (flag("PUSH_TO_HUB") && (text("REPO_ID").empty() || text("REPO_ID") == "username/repo_name" ||
                              text("REPO_ID").find('/') == std::string::npos))
    problems.push_back({"REPO_ID", fmt::format("PUSH_TO_HUB=True ({}) needs REPO_ID=USER/NAME, the repository to upload "
                                               "to (REPO_ID is {}{}); set it, or PUSH_TO_HUB=False",
                                               where("PUSH_TO_HUB"),
                                               text("REPO_ID").empty() ? "empty" : "'" + text("REPO_ID") + "'",
                                               text("REPO_ID") == "username/repo_name" ? ", the tutorial's placeholder" : "")});
  if (flag("MERGE_ADAPTER") && !flag("USE_PEFT") && std::holds_alternative<bool>(is("USE_PEFT").effective))
    problems.push_back({"MERGE_ADAPTER", fmt::format("MERGE_ADAPTER=True ({}) with USE_PEFT=False ({}): there is no "
                                                     "adapter to merge (full fine-tuning writes the whole model); "
                                                     "set MERGE_ADAPTER=False, or USE_PEFT=True",
                                                     where("MERGE_ADAPTER"), where("USE_PEFT"))});
  if (flag("USE_INT4") && !flag("USE_PEFT") && std::holds_alternative<bool>(is("USE_PEFT").effective))
    problems.push_back({"USE_INT4", fmt::format("USE_INT4=True ({}) with USE_PEFT=False ({}): a 4-bit base cannot be "
                                                "fine-tuned in full (its weights are frozen codes); set USE_PEFT=True "
                                                "to train LoRA adapters on it, or USE_INT4=False for full fine-tuning",
                                                where("USE_INT4"), where("USE_PEFT"))});

  const std::string device = text("DEVICE");
  const bool device_ok = device.empty() || device == "auto" || device == "cpu" || device == "cuda" ||
                         (device.size() > 5 && device.rfind("cuda:", 0) == 0 && device.size() <= 9 &&
                          device.find_first_not_of("0123456789", 5) == std::string::npos);
  if (!device_ok)
    problems.push_back({"DEVICE", fmt::format("DEVICE={} ({}): not a device; expected auto, cpu, cuda or cuda:N "
                                              "(N the GPU's index, e.g. cuda:0)",
                                              mask_token_like(device), where("DEVICE"))});

  // Completions-only masking: RESPONSE_TEMPLATE alone turns it on; an explicit
  // TRAIN_ON_COMPLETIONS_ONLY=False wins (and says the templates are unused).
  Entry& completions = cfg.entries_.at("TRAIN_ON_COMPLETIONS_ONLY");
  const std::string response = text("RESPONSE_TEMPLATE");
  const std::string instruction = text("INSTRUCTION_TEMPLATE");
  const bool explicitly_set = completions.is_set && !completions.raw.empty();
  if (std::holds_alternative<bool>(completions.effective)) {
    if (!explicitly_set && !response.empty()) {
      completions.effective = true;
    } else if (explicitly_set && !flag("TRAIN_ON_COMPLETIONS_ONLY") && (!response.empty() || !instruction.empty())) {
      cfg.warnings_.push_back(fmt::format("{}: TRAIN_ON_COMPLETIONS_ONLY=False: every token is trained on; "
                                          "RESPONSE_TEMPLATE/INSTRUCTION_TEMPLATE are not used",
                                          completions.source));
    }
  }
  if (flag("TRAIN_ON_COMPLETIONS_ONLY") && response.empty())
    problems.push_back({"TRAIN_ON_COMPLETIONS_ONLY",
                        fmt::format("TRAIN_ON_COMPLETIONS_ONLY=True ({}) needs RESPONSE_TEMPLATE, the marker that "
                                    "starts each completion (e.g. RESPONSE_TEMPLATE='### Assistant:')",
                                    completions.source)});
  if (!instruction.empty() && response.empty())
    problems.push_back({"INSTRUCTION_TEMPLATE",
                        fmt::format("INSTRUCTION_TEMPLATE='{}' ({}) marks the user turns of a completions-only mask, "
                                    "which also needs RESPONSE_TEMPLATE, the marker of the answers (e.g. "
                                    "RESPONSE_TEMPLATE='### Assistant:')",
                                    instruction, where("INSTRUCTION_TEMPLATE"))});

  const auto* fraction = std::get_if<double>(&is("VALID_FRACTION").effective);
  if (!text("VALID_SPLIT").empty() && fraction && *fraction > 0)
    problems.push_back({"VALID_FRACTION", fmt::format("VALID_SPLIT={} ({}) and VALID_FRACTION={} ({}) both ask for a "
                                                      "validation set; set only one",
                                                      text("VALID_SPLIT"), where("VALID_SPLIT"),
                                                      is("VALID_FRACTION").raw, where("VALID_FRACTION"))});

  // HF Trainer refuses an evaluation strategy without eval data; AutoTrain 0.6.44 turned it off
  // without a word. Asked for in so many words, it deserves one.
  const Entry& eval_strategy = is("EVAL_STRATEGY");
  if (eval_strategy.is_set && !eval_strategy.raw.empty() && text("EVAL_STRATEGY") != "no" &&
      text("VALID_SPLIT").empty() && !(fraction && *fraction > 0))
    cfg.warnings_.push_back(fmt::format("{}: EVAL_STRATEGY={} evaluates nothing without a validation set; set "
                                        "VALID_SPLIT (a split of the data) or VALID_FRACTION (held out from train)",
                                        eval_strategy.source, text("EVAL_STRATEGY")));

  // EVAL_STEPS / SAVE_STEPS act only with their strategy at `steps` (as in HF Trainer, which
  // ignores them without a word): set alone, they would seem to do something.
  for (auto [steps_key, strategy_key] : {std::pair{"EVAL_STEPS", "EVAL_STRATEGY"}, std::pair{"SAVE_STEPS", "SAVE_STRATEGY"}}) {
    const Entry& steps = is(steps_key);
    if (steps.is_set && !steps.raw.empty() && text(strategy_key) != "steps")
      cfg.warnings_.push_back(fmt::format("{}: {}={} is used only with {}=steps (it is {}); set {}=steps to act on it",
                                          steps.source, steps_key, steps.raw, strategy_key, text(strategy_key),
                                          strategy_key));
  }

  // bitsandbytes' 32-bit AdamW names (QLoRA recipes ask for the paged one) run the same update as
  // torch's; paging its states to host memory under pressure is not built (LoRA's are small).
  if (text("OPTIMIZER") == "paged_adamw_32bit" || text("OPTIMIZER") == "adamw_bnb_32bit")
    cfg.warnings_.push_back(fmt::format("OPTIMIZER={} ({}) runs as adamw_torch: the same AdamW update with 32-bit "
                                        "states on the training device (they are not paged to host memory; a LoRA's "
                                        "states are small)",
                                        text("OPTIMIZER"), where("OPTIMIZER")));

  // LOAD_BEST_MODEL_AT_END picks among the steps that are both evaluated and saved; HF Trainer
  // refuses strategies that do not line up (AutoTrain then failed), here they would silently make
  // the final weights the last step's or an early checkpoint's. Said before the run, with the fix.
  const bool has_validation = !text("VALID_SPLIT").empty() || (fraction && *fraction > 0);
  const auto* load_best = std::get_if<bool>(&is("LOAD_BEST_MODEL_AT_END").effective);
  if (has_validation && load_best && *load_best && text("EVAL_STRATEGY") != "no") {
    const std::string eval = text("EVAL_STRATEGY"), save = text("SAVE_STRATEGY");
    const auto* eval_steps = std::get_if<int64_t>(&is("EVAL_STEPS").effective);
    const auto* save_steps = std::get_if<int64_t>(&is("SAVE_STEPS").effective);
    std::string why;
    if (save == "no") {
      if (is("LOAD_BEST_MODEL_AT_END").is_set && !is("LOAD_BEST_MODEL_AT_END").raw.empty())
        why = "SAVE_STRATEGY=no saves no checkpoint to choose from: the final weights are the last step's";
    } else if (save != eval) {
      why = fmt::format("EVAL_STRATEGY={} and SAVE_STRATEGY={} rarely meet, so the best evaluated step is seldom a "
                        "saved one and the final weights can be a step never evaluated",
                        eval, save);
    } else if (eval == "steps" && eval_steps && save_steps && *eval_steps > 0 && *save_steps % *eval_steps != 0) {
      why = fmt::format("SAVE_STEPS={} is not a multiple of EVAL_STEPS={}: only steps both evaluate and save can be "
                        "chosen, and the best evaluated one may not be among them",
                        *save_steps, *eval_steps);
    }
    if (!why.empty())
      cfg.warnings_.push_back(fmt::format("LOAD_BEST_MODEL_AT_END=True ({}) keeps the saved checkpoint with the lowest "
                                          "eval loss, but {} (HF Trainer refuses this); set SAVE_STRATEGY={}{}, or "
                                          "LOAD_BEST_MODEL_AT_END=False",
                                          where("LOAD_BEST_MODEL_AT_END"), why, eval,
                                          eval == "steps" ? " with SAVE_STEPS a multiple of EVAL_STEPS" : ""));
  }

  // TRAINER=sft packs with EOS between examples whatever ADD_EOS_TOKEN says (trl's packing, which
  // AutoTrain's sft used without reading add_eos_token).
  if (const auto* add_eos = std::get_if<bool>(&is("ADD_EOS_TOKEN").effective);
      add_eos && *add_eos && text("TRAINER") == "sft")
    cfg.warnings_.push_back(fmt::format("ADD_EOS_TOKEN=True ({}) has no effect with TRAINER=sft, whose packing puts "
                                        "EOS between examples already",
                                        where("ADD_EOS_TOKEN")));

  // Allowed (a quick check that the loss falls), but the eval loss then says nothing about
  // generalisation, which is what a validation split is for.
  if (!text("VALID_SPLIT").empty() && text("VALID_SPLIT") == text("TRAIN_SPLIT"))
    cfg.warnings_.push_back(fmt::format("VALID_SPLIT={} ({}) is the TRAIN_SPLIT: the eval loss is measured on the "
                                        "training data itself",
                                        text("VALID_SPLIT"), where("VALID_SPLIT")));

  const std::string targets = text("TARGET_MODULES");
  if (targets.find(',') != std::string::npos && targets.find_first_not_of(", \t") == std::string::npos)
    problems.push_back({"TARGET_MODULES", fmt::format("TARGET_MODULES='{}' ({}) names no module (only commas and "
                                                      "spaces), so nothing would be trained; give a comma list of "
                                                      "layers, all-linear, or leave it empty for PEFT's Falcon default "
                                                      "query_key_value",
                                                      targets, where("TARGET_MODULES"))});

  // The project folder receives the run's files (tokenizer files, README.md, training_params.json,
  // metrics.jsonl, a full fine-tune's weights): it may be neither the base model's folder nor the
  // data's. Checked for local folders here, so that `config` and `setup` (which creates the
  // project folder) refuse what `data` and `train` refuse.
  const std::string project = text("AUTOTRAIN_PROJECT_NAME");
  std::error_code ec;
  const std::filesystem::path project_dir = std::filesystem::weakly_canonical(project, ec);
  auto is_project = [&](const char* key) {
    const std::string folder = text(key);
    std::error_code e;
    if (project.empty() || folder.empty() || !std::filesystem::is_directory(folder, e)) return false;
    return std::filesystem::weakly_canonical(folder, e) == project_dir && !e;
  };
  if (!ec && is_project("MODEL_NAME"))
    problems.push_back({"AUTOTRAIN_PROJECT_NAME",
                        fmt::format("AUTOTRAIN_PROJECT_NAME {} is the MODEL_NAME folder {} ({}, {}): the run's outputs "
                                    "would overwrite the base model's files; give the project its own folder",
                                    project, text("MODEL_NAME"), where("AUTOTRAIN_PROJECT_NAME"), where("MODEL_NAME"))});
  if (!ec && is_project("DATA_PATH"))
    problems.push_back({"AUTOTRAIN_PROJECT_NAME",
                        fmt::format("AUTOTRAIN_PROJECT_NAME {} is the DATA_PATH folder {} ({}, {}): the run's outputs "
                                    "would be read as data by the next run; give the project its own folder (or move "
                                    "the data into a subfolder)",
                                    project, text("DATA_PATH"), where("AUTOTRAIN_PROJECT_NAME"), where("DATA_PATH"))});

  // DATA_FILE may live in the project folder, but not under a name `train` writes there (the model
  // card would replace the data, and the next `data` would refuse the card as a DATA_FILE).
  const std::string data_file = text("DATA_FILE");
  if (!ec && !project.empty() && !data_file.empty()) {
    std::error_code e;
    const std::filesystem::path file = std::filesystem::weakly_canonical(data_file, e);
    static const std::set<std::string> kTrainOutputs = {
        "README.md",          "adapter_model.safetensors", "adapter_config.json",      "training_params.json",
        "metrics.jsonl",      "tokenizer.json",            "tokenizer.model",          "tokenizer_config.json",
        "special_tokens_map.json", "config.json",          "model.safetensors",        "model.safetensors.index.json",
        "generation_config.json"};
    const std::filesystem::path inside = file.lexically_relative(project_dir);  // "../x" when outside
    const std::string top = inside.empty() ? std::string() : inside.begin()->string();
    const bool in_project = !e && !top.empty() && top != ".." && top != ".";
    // checkpoint-<step>/ folders, and a full fine-tune's model-00001-of-00002.safetensors shards.
    // (The token cache's files, autotrain-data/, `data` itself refuses, naming them.)
    auto digits = [](std::string_view t) {
      return !t.empty() && t.find_first_not_of("0123456789") == std::string_view::npos;
    };
    const std::string_view name = top;
    const bool checkpoint = name.starts_with("checkpoint-") && digits(name.substr(11)) && inside != top;
    const size_t of = name.find("-of-");
    const bool shard = name.starts_with("model-") && name.ends_with(".safetensors") && of != std::string_view::npos &&
                       digits(name.substr(6, of - 6)) &&
                       digits(name.substr(of + 4, name.size() - of - 4 - std::string_view(".safetensors").size()));
    if (in_project && (kTrainOutputs.count(inside.string()) || checkpoint || shard))
      problems.push_back({"DATA_FILE", fmt::format("DATA_FILE={} ({}) is a file `train` writes in the project folder {}: "
                                                   "the run would overwrite the data; give DATA_FILE another name "
                                                   "(e.g. {}/train.csv)",
                                                   data_file, where("DATA_FILE"), project, project)});
  }
}

const Entry& Config::entry(std::string_view key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) throw std::logic_error(fmt::format("unknown config key {}", key));
  return it->second;
}

std::string Config::get_string(std::string_view key) const {
  const auto& v = entry(key).effective;
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  throw std::logic_error(fmt::format("config key {} is not a string", key));
}

int64_t Config::get_int(std::string_view key) const {
  const auto& v = entry(key).effective;
  if (auto* i = std::get_if<int64_t>(&v)) return *i;
  throw std::logic_error(fmt::format("config key {} is not an integer", key));
}

double Config::get_float(std::string_view key) const {
  const auto& v = entry(key).effective;
  if (auto* d = std::get_if<double>(&v)) return *d;
  if (auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  throw std::logic_error(fmt::format("config key {} is not a number", key));
}

bool Config::get_bool(std::string_view key) const {
  const auto& v = entry(key).effective;
  if (auto* b = std::get_if<bool>(&v)) return *b;
  throw std::logic_error(fmt::format("config key {} is not a boolean", key));
}

std::optional<std::string> Config::secret(std::string_view key) const {
  const auto& v = entry(key).effective;
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  return std::nullopt;
}

std::string Config::redact(std::string text) const {
  for (const auto& spec : config_keys()) {
    if (spec.type != KeyType::Secret) continue;
    auto it = entries_.find(spec.name);
    if (it == entries_.end()) continue;
    const Entry& e = it->second;
    // Shorter texts would mask ordinary words; no real token is that short. The tutorial's
    // placeholder is no secret, and the warning about it must be able to quote it.
    for (const std::string& secret : {e.raw, std::get_if<std::string>(&e.effective)
                                                 ? std::get<std::string>(e.effective)
                                                 : std::string()})
      if (secret.size() >= 4 && secret != kTokenPlaceholder)
        for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
          text.replace(at, secret.size(), "***");
  }
  // And a Hugging Face token pasted into another key (REPO_ID=hf_...): "hf_" and 30 or more
  // letters and digits (real ones have 34). Shorter runs are names (/data/hf_datasets), which
  // saved files and the run's identity must keep as they are.
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  for (size_t at = text.find("hf_"); at != std::string::npos; at = text.find("hf_", at + 3)) {
    size_t end = at + 3;
    while (end < text.size() && alnum(text[end])) ++end;
    if (end - (at + 3) >= 30 && (at == 0 || !alnum(text[at - 1])))
      for (size_t k = at + 3; k < end; ++k) text[k] = '*';
  }
  return text;
}

nlohmann::ordered_json Config::to_json() const {
  nlohmann::json values = nlohmann::json::object();
  nlohmann::json effective = nlohmann::json::object();
  nlohmann::json sources = nlohmann::json::object();
  // Every value shown or saved (training_params.json, the model card) is redacted.
  auto redacted = [&](nlohmann::json v) { return v.is_string() ? nlohmann::json(redact(v.get<std::string>())) : v; };
  for (const auto& spec : config_keys()) {
    const Entry& e = entries_.find(spec.name)->second;
    bool secret = spec.type == KeyType::Secret;
    std::string name(spec.name);
    if (e.is_set && e.alias.empty())
      values[name] = secret && !e.raw.empty() ? nlohmann::json("***") : redacted(e.raw);
    else if (auto shadowed = shadowed_values_.find(name); shadowed != shadowed_values_.end())
      values[name] = redacted(shadowed->second);  // set in the shell, but an alias on a higher layer won
    effective[name] = secret && !std::holds_alternative<std::monostate>(e.effective) ? nlohmann::json("***")
                                                                                       : redacted(to_json_value(e.effective));
    sources[name] = e.source;
  }
  for (const auto& [alias, raw] : alias_values_) {
    values[alias] = redacted(raw);
    sources[alias] = alias_sources_.at(alias);
  }
  nlohmann::ordered_json out;
  out["values"] = values;
  out["effective"] = effective;
  out["sources"] = sources;
  // The environment variables the file (or --set) gives the run (HF_HOME, CUDA_VISIBLE_DEVICES).
  nlohmann::ordered_json environment = nlohmann::ordered_json::object();
  for (const auto& [name, value] : exports_) environment[name] = redact(value);
  out["environment"] = environment;
  out["warnings"] = warnings_;
  return out;
}

}  // namespace autotrain::config
