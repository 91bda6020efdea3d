// `autotrain train`: the whole fine-tuning run of a config (data from the token cache, model,
// LoRA or full fine-tuning, optimizer, schedule, mixed precision, evaluation, checkpoints,
// resume, the project folder). No LibTorch in this header: the CLI includes it.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "autotrain/config/config.h"

namespace autotrain::train {

// A config or command-line choice that cannot run (exit code 2).
class TrainUsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct TrainOptions {
  // "auto": continue from the newest complete checkpoint of this run, if any; "never": start
  // over (removing the project's checkpoints); else the path of a checkpoint folder.
  std::string resume = "auto";
  std::optional<int64_t> max_steps;  // overrides MAX_STEPS
  bool dry_run = false;              // load, plan and print, but take no step
};

// Runs training and returns the exit code: 0, or 130 / 143 after SIGINT / SIGTERM (a checkpoint
// of the last finished step is written first). Throws TrainUsageError, data::DataError (usage)
// or std::runtime_error (runtime failures: out of memory, nan loss, no CUDA device).
int run_train(const config::Config& cfg, const TrainOptions& options);

}  // namespace autotrain::train
