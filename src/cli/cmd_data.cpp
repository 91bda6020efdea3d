// autotrain data [-c F] [--set K=V]...: DATA_FILE and the token cache. Argument parsing and
// printing only; the work is in autotrain/data/prepare.h (no LibTorch).
#include <fmt/format.h>

#include "autotrain/data/prepare.h"
#include "autotrain/io/project_lock.h"
#include "autotrain/io/json_error.h"
#include "common.h"

namespace autotrain::cli {

Subcommand add_data_command(CLI::App& app, GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("data", "Prepare DATA_FILE and the token cache");
  auto force = std::make_shared<bool>(false);
  sub->add_flag("--rebuild", *force, "Rebuild the token cache even when its manifest matches");
  return {sub, [&g, force] {
            config::Config cfg = load_config(g, /*required=*/true);
            data::PrepareOptions options;
            options.write_data_file = true;
            options.force_rebuild = *force;
            data::PreparedData d;
            try {
              io::ProjectLock lock(cfg.get_string("AUTOTRAIN_PROJECT_NAME"));  // one process per project folder
              d = data::prepare_data(cfg, options);
            } catch (const io::ProjectFolderError& e) {
              fmt::print(stderr, "error: {}\n", cfg.redact(e.what()));
              return static_cast<int>(kExitUsage);
            } catch (const data::DataError& e) {
              fmt::print(stderr, "error: {}\n", cfg.redact(e.what()));
              return static_cast<int>(kExitUsage);
            } catch (const config::ConfigError& e) {
              report_config_error(e);  // a key's value found wrong once the model is known (TARGET_MODULES)
              return static_cast<int>(kExitUsage);
            } catch (const std::exception& e) {
              // Messages quote paths and values, which can hold the token (MODEL_NAME=x/$HF_TOKEN).
              fmt::print(stderr, "error: {}\n", cfg.redact(io::json_error_text(e)));
              return static_cast<int>(kExitRuntime);
            }
            fmt::print("{}", d.summary);
            fmt::print("token cache: {} ({})\n", d.cache_dir.string(),
                       d.reused ? "reused: the manifest matches" : "built: " + d.rebuild_reason);
            if (!d.data_file.empty()) fmt::print("DATA_FILE: {}\n", d.data_file.string());
            return static_cast<int>(kExitOk);
          }};
}

}  // namespace autotrain::cli
