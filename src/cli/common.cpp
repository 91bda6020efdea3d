#include "common.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "autotrain/data/error.h"
#include "autotrain/hub/hub.h"
#include "autotrain/io/json_error.h"
#include "autotrain/io/json_text.h"
#include "autotrain/io/project_lock.h"
#include "autotrain/train/train_command.h"

namespace autotrain::cli {

std::string config_path(const GlobalOptions& g, bool* explicitly_named) {
  if (explicitly_named) *explicitly_named = true;
  if (!g.config_path.empty()) return g.config_path;
  if (const char* env = std::getenv("AUTOTRAIN_CONFIG"); env && *env) return env;
  if (explicitly_named) *explicitly_named = false;
  return "falcon.env";
}

namespace {

// The rank of this process in a data-parallel run (torchrun's RANK, else the SLURM_PROCID of a
// task srun started), or nullopt outside one. Every process reads the same config: rank 0 alone
// prints its warnings, and the others say their errors in one line (which still names a problem
// only one node has, such as a config file missing there).
std::optional<std::string> process_rank() {
  if (const char* rank = std::getenv("RANK"); rank && *rank) return std::string(rank);
  if (const char* tasks = std::getenv("SLURM_STEP_NUM_TASKS"); tasks && *tasks && std::string_view(tasks) != "1")
    if (const char* rank = std::getenv("SLURM_PROCID"); rank && *rank) return std::string(rank);
  return std::nullopt;
}

bool not_rank_zero() {
  const auto rank = process_rank();
  return rank && *rank != "0";
}

}  // namespace

config::Config load_config(const GlobalOptions& g, bool required) {
  bool named = false;
  std::string path = config_path(g, &named);
  config::ResolveInputs inputs;
  inputs.environment = config::process_environment();
  inputs.overrides = g.sets;
  if (std::filesystem::exists(path)) {
    inputs.config_file = path;
  } else if (named || required) {
    config::Diagnostic d;
    d.where.file = path;
    d.message = named ? "config file not found"
                      : "no config file: ./falcon.env does not exist";
    d.hint = "pass -c FILE (e.g. -c configs/tiny.env) or set AUTOTRAIN_CONFIG";
    throw config::ConfigError({}, {d});
  } else {
    spdlog::info("no config file (./falcon.env absent): using defaults, the environment and --set");
  }
  config::Config cfg = config::Config::resolve(inputs);
  if (!not_rank_zero())
    for (const auto& w : cfg.warnings()) spdlog::warn("{}", w);
  // As the tutorial's `set -a; source falcon.env`: the allow-listed variables the file or --set
  // gives (HF_HOME, CUDA_VISIBLE_DEVICES, ...; Config::exports) reach the environment before the
  // model, the data or a GPU is looked for.
  for (const auto& [name, value] : cfg.exports()) {
    ::setenv(name.c_str(), value.c_str(), 1);
    spdlog::debug("exported {} from the config file", name);
  }
  // The config's HF_TOKEN (the tutorial's place for it) reads gated or private repositories.
  if (auto token = cfg.secret("HF_TOKEN")) hub::install_repo_fetcher(*token);
  return cfg;
}

hub::HubOptions hub_options(const GlobalOptions& g) {
  std::optional<std::string> token;
  if (!g.config_path.empty() || !g.sets.empty()) token = load_config(g, /*required=*/true).secret("HF_TOKEN");
  return hub::options_from_env(model::process_env, token);
}

void report_config_error(const config::ConfigError& e) {
  if (not_rank_zero() && (!e.parse_errors().empty() || !e.problems().empty())) {
    const std::string first = !e.parse_errors().empty() ? e.parse_errors().front().format("error")
                                                        : "error: " + e.problems().front().message;
    const size_t n = e.parse_errors().size() + e.problems().size();
    fmt::print(stderr, "rank {}: {}{}\n", *process_rank(), first.substr(0, first.find('\n')),
               n > 1 ? fmt::format(" (and {} more; rank 0 lists them)", n - 1) : std::string());
    return;
  }
  for (const auto& w : e.warnings()) spdlog::warn("{}", w);
  size_t n = e.parse_errors().size() + e.problems().size();
  for (const auto& d : e.parse_errors()) fmt::print(stderr, "{}\n", d.format("error"));
  for (const auto& p : e.problems()) fmt::print(stderr, "error: {}\n", p.message);
  if (n > 1) fmt::print(stderr, "{} problems in the configuration; nothing was run\n", n);
}

int report_run_failure(const config::Config& cfg) {
  try {
    throw;
  } catch (const config::ConfigError& e) {
    report_config_error(e);  // a key's value found wrong once the model is known (TARGET_MODULES)
    return kExitUsage;
  } catch (const train::TrainUsageError& e) {
    fmt::print(stderr, "error: {}\n", cfg.redact(e.what()));
    return kExitUsage;
  } catch (const data::DataError& e) {
    fmt::print(stderr, "error: {}\n", cfg.redact(e.what()));
    return kExitUsage;
  } catch (const io::ProjectFolderError& e) {
    fmt::print(stderr, "error: {}\n", cfg.redact(e.what()));
    return kExitUsage;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", cfg.redact(io::json_error_text(e)));
    return kExitRuntime;
  }
}

// CLI::PositiveNumber says "Value 0 not in range 0.000000 to 1.79e308"; say what is wanted.
// An option given as "" (a shell variable that was empty) would mean "not given" and, for
// --adapter, score the base model without a word.
CLI::Validator not_empty(const char* example) {
  return CLI::Validator(
      [example](std::string& text) -> std::string {
        return text.empty() ? fmt::format("is empty; give a value (e.g. {}) or leave the option out", example)
                            : std::string();
      },
      "NOT EMPTY");
}

CLI::Validator positive_integer(const char* example) {
  return CLI::Validator(
      [example](std::string& text) -> std::string {
        errno = 0;
        char* end = nullptr;
        long long v = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0' || errno == ERANGE || v <= 0)
          return fmt::format("'{}' is not a positive whole number (e.g. {})", text, example);
        text = std::to_string(v);  // CLI11 would read "010" as octal 8 (hence transform, not check)
        return {};
      },
      "POSITIVE INTEGER");
}

CLI::Validator whole_number(const char* what, unsigned long long high) {
  return CLI::Validator(
      [what, high](std::string& text) -> std::string {
        const bool digits = !text.empty() && text.size() <= 20 &&
                            text.find_first_not_of("0123456789") == std::string::npos;
        errno = 0;
        const unsigned long long v = digits ? std::strtoull(text.c_str(), nullptr, 10) : 0;
        if (!digits) return fmt::format("'{}' is not {}", text, what);
        if (errno == ERANGE || v > high) return fmt::format("'{}' is too large: {} at most", text, high);
        text = std::to_string(v);  // CLI11 would read "010" as octal 8 (hence transform, not check)
        return {};
      },
      "UINT");
}

std::vector<JsonLine> read_json_lines(const std::string& path, std::string_view one_line) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))  // opens, and reads as empty
      throw std::invalid_argument(fmt::format("--jsonl {}: is a folder; give a .jsonl file (one {} per line)", path, one_line));
    file.open(path, std::ios::binary);
    if (!file) throw std::invalid_argument(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    in = &file;
  }
  std::vector<JsonLine> lines;
  std::string line;
  for (size_t lineno = 1; std::getline(*in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    try {
      lines.push_back({lineno, io::parse_json_text(line)});
    } catch (const nlohmann::json::parse_error& e) {
      throw std::invalid_argument(fmt::format("{}:{}: not valid JSON: {}", path, lineno, io::json_error_text(e)));
    }
  }
  return lines;
}

}  // namespace autotrain::cli
