// Step arithmetic and learning-rate schedules as Hugging Face's Trainer computes them
// (autotrain-behaviour.md §2.7; transformers.optimization). No LibTorch.
#pragma once

#include <cstdint>
#include <string_view>

namespace autotrain::train {

enum class Schedule { kLinear, kCosine, kConstant, kConstantWithWarmup };
// "linear" | "cosine" | "constant" | "constant_with_warmup"; throws std::invalid_argument.
Schedule parse_schedule(std::string_view name);

// The factor on the peak learning rate for the update with 0-based index `step` (LambdaLR: the
// first update uses factor(0), which is 0 during warm-up, as in transformers).
double lr_factor(Schedule schedule, int64_t step, int64_t warmup_steps, int64_t total_steps);

struct StepPlan {
  int64_t micro_batches_per_epoch = 0;  // ceil(blocks / batch_size)
  int64_t steps_per_epoch = 0;          // max(micro_batches / grad_accum, 1)
  int64_t micro_batches_per_step = 0;   // grad_accum, or all of them when an epoch has fewer
  int64_t total_steps = 0;              // epochs * steps_per_epoch, or max_steps when > 0
  int64_t warmup_steps = 0;             // warmup_steps_option when > 0, else ceil(ratio * total)
  int64_t epochs = 0;                   // epochs needed to reach total_steps
  int64_t logging_steps = 0;
};

// `logging_steps` -1 is AutoTrain's rule: int(0.2 * blocks / batch_size) over the validation
// blocks when there are any, else the training blocks, at least 1 (0.6.44 had no upper clamp:
// about 5 log lines per run at the tutorial's batch 1 x accumulation 4).
StepPlan plan_steps(int64_t train_blocks, int64_t valid_blocks, int64_t batch_size, int64_t grad_accum,
                    int64_t epochs, int64_t max_steps, double warmup_ratio, int64_t warmup_steps_option,
                    int64_t logging_steps);

// The fractional epoch after `steps_done` optimizer steps, as HF Trainer logs it (state.epoch =
// epoch + micro-batches done in it / micro-batches per epoch): with micro-batches left over at an
// epoch's end (not a multiple of the accumulation), its last step logs a little under a whole
// epoch, 1.96 rather than 2.00.
double epoch_after(const StepPlan& plan, int64_t steps_done);

}  // namespace autotrain::train
