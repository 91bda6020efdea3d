// autotrain setup [-c F] [--token T] [--json]: environment report, HF token file, project folder.
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "autotrain/hub/hub.h"
#include "autotrain/io/hf_token.h"
#include "autotrain/model/model_dir.h"
#include "autotrain/setup/environment_report.h"
#include "common.h"

namespace autotrain::cli {

namespace {

struct SetupOptions {
  std::string token;  // "-" = read one line from stdin (keeps it out of `ps`)
  bool token_given = false;  // --token appeared, even as "" (an unset variable): checked, not ignored
  bool json = false;
};

struct ChosenToken {
  std::string token;   // without surrounding blanks
  std::string origin;  // for messages: "--token", "stdin (--token -)", "HF_TOKEN"
};

// The token to store: --token, else the config's HF_TOKEN (which sees the environment),
// else $HF_TOKEN. The placeholder hf_XXX counts as none. Blanks around a pasted token are
// dropped; what is left may still be unusable (empty, inner blanks), which the caller checks.
std::optional<ChosenToken> choose_token(const SetupOptions& o, const std::optional<config::Config>& cfg) {
  std::optional<ChosenToken> chosen;
  if (o.token_given) {
    std::string t = o.token;
    std::string origin = "--token";
    if (t == "-") {
      origin = "stdin (--token -)";
      if (!std::getline(std::cin, t)) t.clear();
    }
    chosen = ChosenToken{io::trim_token(t), origin};
    if (chosen->token == "hf_XXX") {
      spdlog::warn("--token is the placeholder hf_XXX; no token stored");
      return std::nullopt;
    }
    return chosen;
  }
  if (cfg) {
    if (auto t = cfg->secret("HF_TOKEN")) chosen = ChosenToken{io::trim_token(*t), "HF_TOKEN"};
  } else if (const char* env = std::getenv("HF_TOKEN"); env && *env) {
    chosen = ChosenToken{io::trim_token(env), "$HF_TOKEN"};
  }
  if (chosen && (chosen->token == "hf_XXX" || chosen->token.empty())) return std::nullopt;
  return chosen;
}

int run_setup(GlobalOptions& g, const SetupOptions& o) {
  int exit_code = kExitOk;
  nlohmann::json out;

  // 1. Config (optional for setup: it may run before any falcon.env exists).
  std::optional<config::Config> cfg;
  bool config_invalid = false;  // (exit_code also says a bad token)
  try {
    cfg = load_config(g, /*required=*/false);
    // A config file is for `data` and `train`: one that names no model or data would pass here
    // and fail in every job.
    const std::vector<std::string> missing =
        cfg->config_file() ? cfg->missing_run_inputs() : std::vector<std::string>();
    for (const auto& m : missing) fmt::print(stderr, "error: {}\n", m);
    if (!missing.empty()) {
      exit_code = kExitUsage;
      config_invalid = true;
    }
    out["config"] = {{"file", cfg->config_file() ? nlohmann::json(*cfg->config_file()) : nlohmann::json()},
                     {"valid", missing.empty()},
                     {"warnings", cfg->warnings()}};
    if (!missing.empty()) out["config"]["errors"] = missing;
  } catch (const config::ConfigError& e) {
    report_config_error(e);
    exit_code = kExitUsage;
    config_invalid = true;
    std::vector<std::string> errors;
    for (const auto& d : e.parse_errors()) errors.push_back(d.format("error"));
    for (const auto& p : e.problems()) errors.push_back(p.message);
    out["config"] = {{"file", config_path(g)}, {"valid", false}, {"errors", errors}};
  }

  // 2. Project folder: only for a config that names one (a file, or AUTOTRAIN_PROJECT_NAME set
  // in the environment or with --set); with no config at all, setup only reports the machine.
  std::filesystem::path project;
  if (cfg && !config_invalid && (cfg->config_file() || cfg->entry("AUTOTRAIN_PROJECT_NAME").is_set)) {
    project = cfg->get_string("AUTOTRAIN_PROJECT_NAME");
    std::error_code ec;
    std::filesystem::create_directories(project, ec);
    if (ec) {
      // Said, and the rest of the report still runs (a script reading --json gets its object).
      const std::string error =
          fmt::format("cannot create the project folder {}: {}", project.string(), ec.message());
      fmt::print(stderr, "error: {}\n", error);
      if (exit_code == kExitOk) exit_code = kExitRuntime;
      out["project_dir"] = nullptr;
      out["project_error"] = error;
      project.clear();
    } else {
      out["project_dir"] = std::filesystem::absolute(project).string();
    }
  } else {
    out["project_dir"] = nullptr;
  }

  // 3. Hugging Face token.
  auto env = config::process_environment();
  auto token_path = io::hf_token_path(env);
  auto token = choose_token(o, cfg);
  std::optional<std::string> token_error;
  if (token) {
    if (auto problem = io::token_problem(token->token))
      token_error = fmt::format("the Hugging Face token from {} {}; nothing stored", token->origin, *problem);
  }
  if (token_error) {
    // Bad input (exit 2, DESIGN.md D8); the rest of the report still runs.
    fmt::print(stderr, "error: {}\n", *token_error);
    exit_code = kExitUsage;
    out["hf_token"] = {{"stored", false}, {"path", token_path.string()}, {"error", *token_error}};
  } else if (token) {
    io::store_hf_token(token_path, token->token);
    out["hf_token"] = {{"stored", true}, {"path", token_path.string()}, {"token", io::mask_token(token->token)}};
  } else {
    bool existing = std::filesystem::exists(token_path);
    out["hf_token"] = {{"stored", false}, {"path", token_path.string()}, {"existing_file", existing}};
  }

  // 4. The Hub: reachable, and whose the token is (one quick request; none when offline).
  {
    nlohmann::json hub_report;
    try {
      const hub::HubOptions options =
          hub::options_from_env(model::process_env, cfg ? cfg->secret("HF_TOKEN") : std::nullopt);
      hub_report["endpoint"] = options.endpoint;
      hub_report["offline"] = hub::offline();
      if (hub::offline()) {
        hub_report["status"] = "offline (HF_HUB_OFFLINE): only the cache is used";
      } else if (!options.token) {
        hub_report["status"] = "no token: public models and datasets only";
      } else {
        const hub::Account account = hub::whoami(options, /*retry=*/false);
        hub_report["user"] = account.name;
        hub_report["token_role"] = account.token_role;
        hub_report["status"] = fmt::format("the token is {}'s{}", account.name,
                                           account.token_role.empty() ? "" : " (" + account.token_role + ")");
      }
    } catch (const hub::HubError& e) {
      const std::string why = e.what();
      hub_report["status"] = why;
      // A token the Hub rejects breaks every gated download and upload: an error. A Hub out of
      // reach (a compute node) is only said.
      if (why.find("not valid") != std::string::npos) {
        fmt::print(stderr, "error: {}\n", why);
        if (exit_code == kExitOk) exit_code = kExitRuntime;
        hub_report["token_valid"] = false;
      }
    }
    out["hub"] = hub_report;
  }

  // 5. Machine.
  auto report = setup::collect_environment_report(project.empty() ? std::filesystem::current_path() : project);
  out["environment"] = report.to_json();

  if (o.json) {
    fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return exit_code;
  }
  fmt::print("{}", report.to_text());
  if (out["hf_token"]["stored"].get<bool>())
    fmt::print("HF token      {} stored in {} (mode 0600)\n", out["hf_token"]["token"].get<std::string>(), token_path.string());
  else if (token_error)
    fmt::print("HF token      NOT stored (see the error above)\n");
  else
    fmt::print("HF token      none given ({}){}\n", token_path.string(),
               out["hf_token"]["existing_file"].get<bool>() ? "; an existing token file is kept" : "");
  fmt::print("Hub           {}: {}\n", out["hub"].value("endpoint", std::string("?")),
             out["hub"].value("status", std::string("?")));
  if (!project.empty()) fmt::print("Project       {}\n", out["project_dir"].get<std::string>());
  if (cfg && cfg->config_file() && !config_invalid)
    fmt::print("Config        {} is valid\n", *cfg->config_file());
  else if (config_invalid)
    fmt::print("Config        {} is NOT valid (see the errors above)\n", config_path(g));
  return exit_code;
}

}  // namespace

Subcommand add_setup_command(CLI::App& app, GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("setup", "Check the machine, store the HF token, create the project folder");
  auto o = std::make_shared<SetupOptions>();
  CLI::Option* token =
      sub->add_option("--token", o->token, "Hugging Face token to store in $HF_HOME/token ('-' reads it from stdin)");
  sub->add_flag("--json", o->json, "Machine-readable report");
  return {sub, [&g, o, token] {
            o->token_given = token->count() > 0;
            return run_setup(g, *o);
          }};
}

}  // namespace autotrain::cli
