// Step arithmetic and learning-rate schedules as Hugging Face's Trainer computes them
// (autotrain-behaviour.md §2.7; transformers.optimization). No LibTorch.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace autotrain::train {

enum class Schedule { kLinear, kCosine, kConstant, kConstantWithWarmup, kCosineWithRestarts, kPolynomial };
// "linear" | "cosine" | "constant" | "constant_with_warmup" | "cosine_with_restarts" |
// "polynomial" (transformers' get_scheduler defaults: one cycle; power 1 down to 1e-7);
// throws std::invalid_argument.
Schedule parse_schedule(std::string_view name);

// The factor on the peak learning rate for the update with 0-based index `step` (LambdaLR: the
// first update uses factor(0), which is 0 during warm-up, as in transformers). `peak_lr` matters
// to `polynomial` only, whose end (1e-7) is an absolute learning rate.
double lr_factor(Schedule schedule, int64_t step, int64_t warmup_steps, int64_t total_steps, double peak_lr = 1.0);

struct StepPlan {
  int64_t micro_batches_per_epoch = 0;  // ceil(blocks / batch_size)
  int64_t steps_per_epoch = 0;          // max(micro_batches / grad_accum, 1)
  int64_t micro_batches_per_step = 0;   // grad_accum, or all of them when an epoch has fewer
  int64_t grad_accum = 1;
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

// Which micro-batches an optimizer step takes, as HF Trainer 4.34 (the tutorial's) counted them:
// it stepped whenever the run's micro-batch count reached a multiple of the accumulation, so
// micro-batches left over at an epoch's end (when an epoch's count is not a multiple of it)
// open the next epoch's first step rather than being dropped; and, when an epoch has no more
// micro-batches than the accumulation, also at each epoch's end (3 per epoch at accumulation 4:
// steps of 3, 1, 2, 2, ... micro-batches).
struct MicroBatchRef {
  int64_t epoch = 0;  // whose order the micro-batch comes from
  int64_t index = 0;  // position in that epoch's micro-batches
};
std::vector<MicroBatchRef> micro_batches_of_step(const StepPlan& plan, int64_t step);  // 0-based step

// Whether an epoch ended after step `steps_done` and before the next step completed: HF Trainer
// evaluates and saves at an epoch's end with the weights of the last full step (a partial step's
// micro-batches pending). With 358 micro-batches per epoch and accumulation 4: steps 89, 179, 268.
bool epoch_ends_at(const StepPlan& plan, int64_t steps_done);

// The fractional epoch after `steps_done` optimizer steps, as HF Trainer logs it (state.epoch =
// micro-batches done / micro-batches per epoch).
double epoch_after(const StepPlan& plan, int64_t steps_done);

}  // namespace autotrain::train
