// autotrain config [-c F] [--set K=V]... [--json]: the resolved configuration.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common.h"

namespace autotrain::cli {

namespace {

const char* type_name(config::KeyType t) {
  switch (t) {
    case config::KeyType::String: return "text";
    case config::KeyType::Int: return "integer";
    case config::KeyType::Float: return "number";
    case config::KeyType::Bool: return "boolean";
    case config::KeyType::Choice: return "choice";
    case config::KeyType::Secret: return "secret";
  }
  return "";
}

void print_key_table() {
  fmt::print("| key | type | default | meaning |\n|---|---|---|---|\n");
  for (const auto& k : config::config_keys()) {
    std::string type = type_name(k.type);
    if (k.type == config::KeyType::Choice) {
      type += ":";
      for (size_t i = 0; i < k.choices.size(); ++i) type += std::string(i ? "\\|" : " ") + std::string(k.choices[i]);
    }
    fmt::print("| `{}` | {} | {} | {} |\n", k.name, type, k.default_value.empty() ? "(empty)" : "`" + std::string(k.default_value) + "`",
               k.help);
  }
}

}  // namespace

Subcommand add_config_command(CLI::App& app, GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("config", "Print the resolved configuration, with each value's source");
  auto json = std::make_shared<bool>(false);
  auto keys = std::make_shared<bool>(false);
  sub->add_flag("--json", *json, "Machine-readable: {values, effective, sources, environment, warnings}");
  sub->add_flag("--keys", *keys, "List every config key with its type, default and meaning (Markdown)");
  return {sub, [&g, json, keys] {
            if (*keys) {
              print_key_table();
              return static_cast<int>(kExitOk);
            }
            config::Config cfg = load_config(g, /*required=*/true);
            nlohmann::ordered_json j = cfg.to_json();
            if (*json) {
              // Values are bytes from a file; replace invalid UTF-8 rather than fail.
              fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
              return static_cast<int>(kExitOk);
            }
            fmt::print("# {}\n", cfg.config_file().value_or("(no config file)"));
            for (const auto& spec : config::config_keys()) {
              std::string name(spec.name);
              fmt::print("{:<26} {:<28} # {}\n", name,
                         j["effective"][name].dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace),
                         j["sources"][name].get<std::string>());
            }
            for (const auto& [name, value] : j["environment"].items())
              fmt::print("{:<26} {:<28} # exported to the environment\n", name,
                         value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
            return static_cast<int>(kExitOk);
          }};
}

}  // namespace autotrain::cli
