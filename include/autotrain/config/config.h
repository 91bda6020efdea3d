// Typed, validated configuration: one table of keys (name, type, default, allowed range,
// help) and the resolution of a .env file + process environment + --set overrides into
// values that know where they came from.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "autotrain/config/envfile.h"

namespace autotrain::config {

enum class KeyType { String, Int, Float, Bool, Choice, Secret };

struct KeySpec {
  std::string_view name;
  KeyType type;
  std::string_view default_value;  // as the shell would write it; "" = no value
  std::string_view help;
  // Numeric range (Int, Float): [min, max], with min_exclusive for "strictly positive".
  double min = -1e300;
  double max = 1e300;
  bool min_exclusive = false;
  bool allow_minus_one = false;  // -1 = "auto" (BLOCK_SIZE, LOGGING_STEPS, MAX_STEPS)
  std::vector<std::string_view> choices = {};  // Choice
};

// Every key the tool understands, in documentation order.
const std::vector<KeySpec>& config_keys();
const KeySpec* find_key(std::string_view name);
// Known misspellings accepted with a warning: alias -> canonical key.
const std::map<std::string_view, std::string_view>& key_aliases();
// Keys near `name` by edit distance, closest first (for "did you mean").
std::vector<std::string> suggest_keys(std::string_view name);

using Value = std::variant<std::monostate, std::string, int64_t, double, bool>;

struct Entry {
  const KeySpec* spec = nullptr;
  bool is_set = false;     // set by env, file or cli (not only a default)
  std::string raw;         // the string as the shell would see it
  std::string source;      // "default" | "env" | "FILE:LINE" | "cli"
  Value effective;         // typed value the run uses (default applied when raw is empty)
  std::string alias;       // the alias it was read through (TEXT_COLUMM), if any
};

struct ConfigProblem {
  std::string key;
  std::string message;  // complete sentence: what, where, what is allowed
};

class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::vector<ConfigProblem> problems, std::vector<Diagnostic> parse_errors,
              std::vector<std::string> warnings = {});
  const std::vector<ConfigProblem>& problems() const { return problems_; }
  const std::vector<Diagnostic>& parse_errors() const { return parse_errors_; }
  // What a valid config would have warned about (an unknown key, a typo): said with the errors, so
  // that fixing them is not followed by a run that quietly ignores a misspelt key.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::vector<ConfigProblem> problems_;
  std::vector<Diagnostic> parse_errors_;
  std::vector<std::string> warnings_;
};

struct ResolveInputs {
  std::optional<std::string> config_file;  // none: defaults + environment + overrides only
  Environment environment;                 // usually process_environment()
  std::vector<std::string> overrides;      // "KEY=VALUE" from --set, in order
};

class Config {
 public:
  // Throws ConfigError listing every problem found (parse errors, bad values, conflicts).
  static Config resolve(const ResolveInputs& inputs);

  const Entry& entry(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  // The HF token, if a real one is configured (the `hf_XXX` placeholder counts as none).
  std::optional<std::string> secret(std::string_view key) const;

  const std::vector<std::string>& warnings() const { return warnings_; }
  const std::optional<std::string>& config_file() const { return config_file_; }

  // What `data` and `train` need that is not set (MODEL_NAME, DATA_PATH), one message each, so
  // that `setup` can refuse such a config and `data` name every missing key in one run. Empty
  // when nothing is missing. (Other commands take a model and data on their command line.)
  std::vector<std::string> missing_run_inputs() const;

  // What the file assigned to names that are not config keys (HF_HOME, CUDA_VISIBLE_DEVICES, a
  // helper such as PNAME), with their values: the tutorial's autotrain.sh sourced the file under
  // `set -a`, so these reached the process environment. The commands export them (setenv) before
  // anything reads the environment.
  const std::vector<std::pair<std::string, std::string>>& exports() const { return exports_; }

  // {"values": {...}, "effective": {...}, "sources": {...}, "warnings": [...]}, secrets "***".
  nlohmann::ordered_json to_json() const;

  // `text` with every secret value's text replaced by *** and anything shaped like a real token
  // (hf_ and 30+ letters and digits) masked: a token reaches other keys through expansions (REPO_ID=user/$HF_TOKEN) or a paste
  // into the wrong key, and from there messages and saved files.
  std::string redact(std::string text) const;

 private:
  // Cross-key rules and values this build cannot act on; may also settle effective values
  // (TRAIN_ON_COMPLETIONS_ONLY from RESPONSE_TEMPLATE) and add warnings.
  static void check_run_rules(Config& cfg, std::vector<ConfigProblem>& problems);

  std::optional<std::string> config_file_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::map<std::string, std::string> alias_values_;  // e.g. TEXT_COLUMM as the shell saw it
  std::map<std::string, std::string> alias_sources_;
  std::map<std::string, std::string> shadowed_values_;  // canonical keys an alias overrode, as the shell saw them
  std::vector<std::string> warnings_;
  std::vector<std::pair<std::string, std::string>> exports_;
};

// Parses booleans as the config accepts them: True/False in any case, 1/0.
std::optional<bool> parse_bool(std::string_view text);

}  // namespace autotrain::config
