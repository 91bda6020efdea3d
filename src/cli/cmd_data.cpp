// autotrain data [-c F] [--set K=V]...: DATA_FILE and the token cache. Argument parsing and
// printing only; the work is in autotrain/data/prepare.h (no LibTorch).
#include <fmt/format.h>

#include "autotrain/data/prepare.h"
#include "autotrain/io/project_lock.h"
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
            options.allow_missing_model = true;
            data::PreparedData d;
            try {
              io::ProjectLock lock(cfg.get_string("AUTOTRAIN_PROJECT_NAME"));  // one process per project folder
              d = data::prepare_data(cfg, options);
            } catch (...) {
              return report_run_failure(cfg);
            }
            // Paths can hold the token (expanded into them): masked as in `config`.
            fmt::print("{}", cfg.redact(d.summary));
            if (!d.missing_model.empty()) {
              fmt::print(stderr, "warning: token cache not built: {}\n`train` builds it once the model is there.\n",
                         cfg.redact(d.missing_model));
              fmt::print("token cache: not built (no model yet)\n");
              if (!d.data_file.empty()) fmt::print("DATA_FILE: {}\n", cfg.redact(d.data_file.string()));
              return static_cast<int>(kExitOk);
            }
            fmt::print("token cache: {} ({})\n", cfg.redact(d.cache_dir.string()),
                       cfg.redact(d.reused ? "reused: the manifest matches" : "built: " + d.rebuild_reason));
            if (!d.data_file.empty()) fmt::print("DATA_FILE: {}\n", cfg.redact(d.data_file.string()));
            return static_cast<int>(kExitOk);
          }};
}

}  // namespace autotrain::cli
