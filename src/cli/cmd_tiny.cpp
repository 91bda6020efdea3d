// autotrain tiny [-c F] [--force]: writes the embedded tiny default, the model folder at
// MODEL_NAME and the dataset at DATA_PATH of the config (configs/tiny.env), deterministically.
#include <filesystem>

#include <fmt/format.h>

#include "autotrain/train/tiny_assets.h"
#include "common.h"

namespace autotrain::cli {

Subcommand add_tiny_command(CLI::App& app, GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand(
      "tiny", "Write the tiny Falcon model and dataset of the embedded default at MODEL_NAME and DATA_PATH");
  auto force = std::make_shared<bool>(false);
  sub->add_flag("--force", *force, "Rewrite them even when they exist");
  return {sub, [&g, force] {
            config::Config cfg = load_config(g, /*required=*/true);
            const std::string model = cfg.get_string("MODEL_NAME"), data = cfg.get_string("DATA_PATH");
            if (model.empty() || data.empty()) {
              fmt::print(stderr, "error: MODEL_NAME and DATA_PATH must name the folders to write (see configs/tiny.env)\n");
              return static_cast<int>(kExitUsage);
            }
            const auto seed = static_cast<uint64_t>(cfg.get_int("SEED"));
            train::write_tiny_model(model, seed, *force);
            train::write_tiny_dataset(data, seed, *force);
            fmt::print("tiny model: {}\ntiny dataset: {} (train.jsonl, test.jsonl)\n", model, data);
            return static_cast<int>(kExitOk);
          }};
}

}  // namespace autotrain::cli
