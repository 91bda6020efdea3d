// autotrain train [-c F] [--set K=V]... [--resume auto|never|DIR] [--max-steps N] [--dry-run]:
// argument parsing only; the run is autotrain/train/train_command.h.
#include <fmt/format.h>

#include "autotrain/data/prepare.h"
#include "autotrain/io/project_lock.h"
#include "autotrain/train/train_command.h"
#include "common.h"

namespace autotrain::cli {

Subcommand add_train_command(CLI::App& app, GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("train", "Fine-tune the model of the config (QLoRA / LoRA / full), resumable");
  auto o = std::make_shared<train::TrainOptions>();
  auto max_steps = std::make_shared<int64_t>(0);
  sub->add_option("--resume", o->resume,
                  "auto (default: continue from the newest checkpoint of this run), never (start over), or a "
                  "checkpoint folder");
  CLI::Option* max_steps_option =
      sub->add_option("--max-steps", *max_steps, "Stop after N optimizer steps, or -1: run all epochs (overrides MAX_STEPS)")
          ->check(CLI::Validator(
              [](std::string& text) -> std::string {
                if (text == "-1" || (text.find_first_not_of("0123456789") == std::string::npos &&
                                     text.find_first_not_of('0') != std::string::npos))
                  return {};
                return "expected a number of steps (1 or more), or -1 to run all epochs; got " + text;
              },
              "N|-1"));
  sub->add_flag("--dry-run", o->dry_run, "Prepare the data, load the model, print the plan; take no step");
  return {sub, [&g, o, max_steps, max_steps_option] {
            // --max-steps is MAX_STEPS given on the command line: recorded as such in
            // training_params.json and the model card, so the resolved config reproduces the run.
            GlobalOptions with_steps = g;
            if (max_steps_option->count() > 0) with_steps.sets.push_back(fmt::format("MAX_STEPS={}", *max_steps));
            config::Config cfg = load_config(with_steps, /*required=*/true);
            try {
              return train::run_train(cfg, *o);
            } catch (...) {
              return report_run_failure(cfg);
            }
          }};
}

}  // namespace autotrain::cli
