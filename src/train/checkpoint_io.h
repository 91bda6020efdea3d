// checkpoint-<step>/ folders: everything a run needs to continue exactly where it stopped
// (trainable weights, optimizer moments, loss scaler, random-number states, step and data
// position), written to a temporary folder and renamed when complete, so a folder with the final
// name is always whole.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include <ATen/Tensor.h>
#include <nlohmann/json.hpp>

#include "autotrain/train/adamw.h"

namespace autotrain::train {

struct CheckpointInfo {
  std::filesystem::path dir;
  int64_t step = 0;
};

// Complete checkpoint folders (with trainer_state.json) of `project`, oldest first.
std::vector<CheckpointInfo> list_checkpoints(const std::filesystem::path& project);

// checkpoint-<step>.tmp folders of `project`: checkpoints a killed run (kill -9, power loss) did
// not finish. While the project lock is held, none is being written.
std::vector<std::filesystem::path> unfinished_checkpoints(const std::filesystem::path& project);

// Writes <project>/checkpoint-<step>/: `write_model_files` (the adapter, for users), the
// trainable tensors, the optimizer state, the generator states of `device` and the CPU, and
// `state`: its transformers TrainerState fields as trainer_state.json (which
// TrainerState.load_from_json reads), the rest as autotrain_state.json. Then keeps `keep`
// checkpoints (0: all): this one and the newest others, and checkpoint-<protect> (the best one,
// as HF Trainer keeps it beyond the limit).
void save_checkpoint(const std::filesystem::path& project, int64_t step,
                     const std::function<void(const std::filesystem::path&)>& write_model_files,
                     const std::vector<at::Tensor>& trainable, const AdamW& optimizer, const at::Device& device,
                     const nlohmann::json& state, int64_t keep, int64_t protect = -1);

// The state save_checkpoint wrote (trainer_state.json and autotrain_state.json as one object;
// older checkpoints hold it all in trainer_state.json); throws std::runtime_error if `dir` is not
// a checkpoint folder or a file is damaged.
nlohmann::json read_checkpoint_state(const std::filesystem::path& dir);

// A checkpoint written between SAVE_STEPS because a signal asked for one records which
// (autotrain_state.json's "written_on_signal": "SIGUSR1", "SIGTERM" or "SIGINT"). It exists only
// for the run to continue from, so it goes once a later one supersedes it: save_checkpoint of a
// regular checkpoint removes the extra ones before its step, and a finished run removes them
// all (before_step = the run's last step + 1); checkpoint-<protect> (the best) stays whatever
// wrote it. Returns the folders removed.
std::vector<std::filesystem::path> remove_extra_checkpoints(const std::filesystem::path& project, int64_t before_step,
                                                            int64_t protect = -1);

// Restores only the trainable tensors of a checkpoint (the best one, at the end of a run).
void load_trainable(const std::filesystem::path& dir, const std::vector<at::Tensor>& trainable);

// Restores the trainable tensors, the optimizer and the generator states; returns the state.
nlohmann::json load_checkpoint(const std::filesystem::path& dir, const std::vector<at::Tensor>& trainable,
                               AdamW& optimizer, const at::Device& device);

}  // namespace autotrain::train
