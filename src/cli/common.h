// What every subcommand shares: global options, exit codes (DESIGN.md D8), config loading
// and error printing. Subcommands only parse arguments and call into the libraries.
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "autotrain/config/config.h"
#include "autotrain/hub/hub.h"

namespace autotrain::cli {

enum ExitCode : int { kExitOk = 0, kExitRuntime = 1, kExitUsage = 2, kExitSigint = 130, kExitSigterm = 143 };

struct GlobalOptions {
  std::string config_path;  // -c/--config
  std::vector<std::string> sets;  // --set KEY=VALUE, in order
  std::string log_level = "info";
};

// A subcommand's body, run after parsing; returns the exit code.
using Handler = std::function<int()>;
struct Subcommand {
  CLI::App* app;
  Handler run;
};

// The config file to read: -c, else $AUTOTRAIN_CONFIG, else ./falcon.env. `explicitly_named`
// tells whether the user asked for it (a missing default file is not always an error).
std::string config_path(const GlobalOptions& g, bool* explicitly_named = nullptr);

// Resolves the config; prints warnings. With `required`, a missing file is a usage error;
// without, a missing default file yields defaults + environment + --set.
// Throws config::ConfigError (exit 2).
config::Config load_config(const GlobalOptions& g, bool required);

// The Hub settings of `download` and `upload`: the process environment, after the config's when
// one is named (-c or --set): its exported HF_HOME / HF_HUB_CACHE / HF_HUB_OFFLINE (never
// HF_ENDPOINT: Config::exports leaves it to the shell) and its HF_TOKEN apply, so that a login node fetches into the cache the config's jobs read.
// Throws config::ConfigError.
hub::HubOptions hub_options(const GlobalOptions& g);

// Prints every problem of a config error to stderr.
void report_config_error(const config::ConfigError& e);

// For `catch (...)` around the work of `data` and `train`: prints the exception being handled,
// its text redacted with `cfg` (messages quote paths and values, which can hold the token:
// MODEL_NAME=x/$HF_TOKEN), and returns the exit code: 2 for the config, the data and the project
// folder (bad input), 1 for the rest.
int report_run_failure(const config::Config& cfg);

// Option checks that say what is wanted, with an example: not an empty string (a shell variable
// that was empty would mean "not given"), a whole number above 0.
CLI::Validator not_empty(const char* example);
CLI::Validator positive_integer(const char* example);
// A whole number from 0 to `high`, said as `what` ("a whole number, 0 or more (e.g. 42)") when it
// is not one: checked before CLI11 converts it, whose "Could not convert" says neither what is
// wanted nor an example. Both hand CLI11 the decimal text (it reads "010" as octal): use them with
// ->transform(), since ->check() discards what a validator writes.
CLI::Validator whole_number(const char* what, unsigned long long high);

// One value of a JSON Lines file, with its line number.
struct JsonLine {
  size_t lineno = 0;
  nlohmann::json value;
};
// The values of a JSON Lines file given with --jsonl ('-': stdin), one per line that is not blank
// (a final \r dropped). Throws std::invalid_argument naming the file (and the line) for a folder,
// a file that cannot be opened, or a line that is not JSON; `one_line` shows what a line holds
// (e.g. {"text": ...}) in the folder's message.
std::vector<JsonLine> read_json_lines(const std::string& path, std::string_view one_line);

Subcommand add_config_command(CLI::App& app, GlobalOptions& g);
Subcommand add_setup_command(CLI::App& app, GlobalOptions& g);
Subcommand add_tokenize_command(CLI::App& app, GlobalOptions& g);
Subcommand add_eval_command(CLI::App& app, GlobalOptions& g);
Subcommand add_quantize_command(CLI::App& app, GlobalOptions& g);
Subcommand add_merge_command(CLI::App& app, GlobalOptions& g);
Subcommand add_generate_command(CLI::App& app, GlobalOptions& g);
Subcommand add_chat_command(CLI::App& app, GlobalOptions& g);
Subcommand add_data_command(CLI::App& app, GlobalOptions& g);
Subcommand add_train_command(CLI::App& app, GlobalOptions& g);
Subcommand add_tiny_command(CLI::App& app, GlobalOptions& g);
Subcommand add_launch_command(CLI::App& app, GlobalOptions& g);
Subcommand add_download_command(CLI::App& app, GlobalOptions& g);
Subcommand add_upload_command(CLI::App& app, GlobalOptions& g);

}  // namespace autotrain::cli
