// autotrain: the command-line driver. Parses arguments, sets up logging, dispatches to one
// subcommand and maps failures to the exit codes of DESIGN.md D8.
#include <map>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "autotrain/config/envfile.h"
#include "common.h"
#include "autotrain/hub/hub.h"
#include "autotrain/io/json_error.h"
#include "autotrain/io/temp_paths.h"

namespace autotrain::cli {
namespace {

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("autotrain");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

// The index of the command word: the first argument that is neither a global option nor the
// value of one (-c F, --config F, --set K=V, --log-level L; or their --opt=value forms),
// so `autotrain -c x.env merge` finds `merge`. 0 when there is none (or after `--`).
int command_index(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") return 0;
    if (a == "-c" || a == "--config" || a == "--set" || a == "--log-level") {
      ++i;  // its value
      continue;
    }
    if (!a.empty() && a.front() == '-') continue;  // --opt=value, -cFILE, flags, unknown options
    return i;
  }
  return 0;
}

int run(int argc, char** argv) {
  io::install_signal_cleanup();  // a stopped job says so in its log, whenever the signal comes
  CLI::App app{"autotrain: QLoRA fine-tuning of Falcon and friends, driven by falcon.env configs", "autotrain"};
  app.set_version_flag("--version", "autotrain " AUTOTRAIN_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // global options are accepted after the subcommand too

  GlobalOptions g;
  app.add_option("-c,--config", g.config_path, "Config file (default: $AUTOTRAIN_CONFIG, else ./falcon.env)");
  app.add_option("--set", g.sets, "Override a config key: --set KEY=VALUE (repeatable)")->allow_extra_args(false);
  app.add_option("--log-level", g.log_level, "trace|debug|info|warn|error|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  std::vector<Subcommand> subs;
  subs.push_back(add_setup_command(app, g));
  subs.push_back(add_config_command(app, g));
  subs.push_back(add_data_command(app, g));
  subs.push_back(add_train_command(app, g));
  subs.push_back(add_tiny_command(app, g));
  subs.push_back(add_eval_command(app, g));
  subs.push_back(add_tokenize_command(app, g));
  subs.push_back(add_quantize_command(app, g));
  subs.push_back(add_merge_command(app, g));
  subs.push_back(add_generate_command(app, g));
  subs.push_back(add_chat_command(app, g));
  subs.push_back(add_launch_command(app, g));
  subs.push_back(add_download_command(app, g));
  subs.push_back(add_upload_command(app, g));
  // CLI11 lists the program's options under `autotrain --help` only; the commands that read the
  // config name them in their own help too (they may come before or after the command word).
  for (auto& s : subs) {
    const std::string name = s.app->get_name();
    const bool hub = name == "download" || name == "upload";
    if (name == "setup" || name == "config" || name == "data" || name == "train" || name == "tiny" ||
        name == "generate" || name == "chat" || hub)
      s.app->footer(fmt::format(
          "Global options (before or after the command word):\n"
          "  -c,--config FILE      {}\n"
          "  --set KEY=VALUE       Override a config key (repeatable)\n"
          "  --log-level LEVEL     trace|debug|info|warn|error|off",
          hub ? "Config whose HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE and HF_TOKEN apply (read only when given)"
              : "Config file (default: $AUTOTRAIN_CONFIG, else ./falcon.env)"));
  }

  const int command = command_index(argc, argv);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    // A command word that names no subcommand is a mistyped command: say so plainly.
    if (command > 0) {
      std::string names;
      bool known = false;
      for (const auto* s : app.get_subcommands([](CLI::App*) { return true; })) {
        names += (names.empty() ? "" : ", ") + s->get_name();
        known = known || s->get_name() == argv[command];
      }
      if (!known) {
        fmt::print(stderr, "autotrain: unknown command '{}'\ncommands: {}\nRun 'autotrain --help' for more.\n",
                   config::mask_token_like(argv[command]), names);
        return kExitUsage;
      }
    }
    // CLI11's own message quotes the offending argument, which can be a pasted token
    // (`--set HF_TOKEN hf_...`): shown masked, like every diagnostic.
    fmt::print(stderr, "error: {}\nRun with --help for more information.\n", config::mask_token_like(e.what()));
    return kExitUsage;
  }

  setup_logging(g.log_level);
  // A model or dataset id missing from the cache is downloaded where it is resolved.
  hub::install_repo_fetcher();
  for (auto& s : subs) {
    if (!app.got_subcommand(s.app)) continue;
    // These commands take everything from their options; a config given to them would be
    // ignored without a word (`eval -c falcon.env` does not use its MODEL_NAME).
    const std::string name = s.app->get_name();
    static const std::map<std::string, const char*> kNoConfig = {{"eval", "--model, --data, ..."},
                                                                 {"tokenize", "--tokenizer and --text or --jsonl"},
                                                                 {"quantize", "--model and --out"},
                                                                 {"merge", "--model, --adapter and --out"}};
    if (const auto it = kNoConfig.find(name); it != kNoConfig.end() && (!g.config_path.empty() || !g.sets.empty()))
      fmt::print(stderr, "warning: {} does not read the config: -c/--set are ignored (give {} instead)\n", name,
                 it->second);
    try {
      return s.run();
    } catch (const config::ConfigError& e) {
      report_config_error(e);
      return kExitUsage;
    } catch (const CLI::Error& e) {
      fmt::print(stderr, "error: {}\n", e.what());
      return kExitUsage;
    } catch (const std::exception& e) {
      fmt::print(stderr, "error: {}\n", config::mask_token_like(io::json_error_text(e)));
      return kExitRuntime;
    }
  }
  return kExitUsage;
}

}  // namespace
}  // namespace autotrain::cli

int main(int argc, char** argv) { return autotrain::cli::run(argc, argv); }
