// autotrain config [-c F] [--set K=V]... [--json]: the resolved configuration.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common.h"

namespace autotrain::cli {

Subcommand add_config_command(CLI::App& app, GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("config", "Print the resolved configuration, with each value's source");
  auto json = std::make_shared<bool>(false);
  sub->add_flag("--json", *json, "Machine-readable: {values, effective, sources, warnings}");
  return {sub, [&g, json] {
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
            return static_cast<int>(kExitOk);
          }};
}

}  // namespace autotrain::cli
