#include "autotrain/train/schedule.h"

#include <algorithm>
#include <numeric>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>

namespace autotrain::train {

Schedule parse_schedule(std::string_view name) {
  if (name == "linear") return Schedule::kLinear;
  if (name == "cosine") return Schedule::kCosine;
  if (name == "constant") return Schedule::kConstant;
  if (name == "constant_with_warmup") return Schedule::kConstantWithWarmup;
  if (name == "cosine_with_restarts") return Schedule::kCosineWithRestarts;
  if (name == "polynomial") return Schedule::kPolynomial;
  throw std::invalid_argument("unknown SCHEDULER '" + std::string(name) +
                              "'; use linear, cosine, constant, constant_with_warmup, cosine_with_restarts or polynomial");
}

double lr_factor(Schedule schedule, int64_t step, int64_t warmup_steps, int64_t total_steps, double peak_lr) {
  const auto s = static_cast<double>(step);
  const auto w = static_cast<double>(warmup_steps);
  const auto t = static_cast<double>(total_steps);
  if (schedule == Schedule::kConstant) return 1.0;
  if (step < warmup_steps) return s / std::max(1.0, w);
  switch (schedule) {
    case Schedule::kLinear:
      return std::max(0.0, (t - s) / std::max(1.0, t - w));
    case Schedule::kCosine: {
      const double progress = (s - w) / std::max(1.0, t - w);
      return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
    }
    case Schedule::kCosineWithRestarts: {
      // One cycle (get_scheduler's default): cosine, and 0 from the end on.
      const double progress = (s - w) / std::max(1.0, t - w);
      if (progress >= 1.0) return 0.0;
      return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * std::fmod(progress, 1.0))));
    }
    case Schedule::kPolynomial: {
      // Power 1 from the peak down to lr_end = 1e-7 (an absolute rate), then lr_end.
      constexpr double kEnd = 1e-7;
      if (s > t) return kEnd / peak_lr;
      const double remaining = 1.0 - (s - w) / (t - w);
      return ((peak_lr - kEnd) * remaining + kEnd) / peak_lr;
    }
    default:
      return 1.0;
  }
}

StepPlan plan_steps(int64_t train_blocks, int64_t valid_blocks, int64_t batch_size, int64_t grad_accum,
                    int64_t epochs, int64_t max_steps, double warmup_ratio, int64_t warmup_steps_option,
                    int64_t logging_steps) {
  StepPlan p;
  p.micro_batches_per_epoch = (train_blocks + batch_size - 1) / batch_size;
  p.steps_per_epoch = std::max<int64_t>(p.micro_batches_per_epoch / grad_accum, 1);
  p.micro_batches_per_step = std::min(grad_accum, p.micro_batches_per_epoch);
  p.grad_accum = grad_accum;
  p.total_steps = max_steps > 0 ? max_steps : epochs * p.steps_per_epoch;
  p.epochs = (p.total_steps + p.steps_per_epoch - 1) / p.steps_per_epoch;
  p.warmup_steps = warmup_steps_option > 0
                       ? warmup_steps_option
                       : static_cast<int64_t>(std::ceil(warmup_ratio * static_cast<double>(p.total_steps)));
  if (logging_steps > 0) {
    p.logging_steps = logging_steps;
  } else {
    const int64_t blocks = valid_blocks > 0 ? valid_blocks : train_blocks;
    // AutoTrain 0.6.44 (the tutorial's version) has no upper clamp; the [1, 25] clamp came later.
    p.logging_steps = std::max<int64_t>(
        static_cast<int64_t>(0.2 * static_cast<double>(blocks) / static_cast<double>(batch_size)), 1);
  }
  return p;
}

namespace {

// HF 4.34's step condition, over the run's micro-batch count t (1-based): t a multiple of the
// accumulation, or (epochs of no more micro-batches than that) a multiple of the epoch's count.
// How many steps have been taken after t micro-batches:
int64_t steps_after_micro_batches(const StepPlan& plan, int64_t t) {
  const int64_t n = plan.micro_batches_per_epoch, ga = plan.grad_accum;
  int64_t steps = t / ga;
  if (n > 0 && n <= ga) steps += t / n - t / std::lcm(n, ga);
  return steps;
}

// The run's micro-batch count when step `steps_done` completes (0 for 0).
int64_t micro_batches_at_step(const StepPlan& plan, int64_t steps_done) {
  if (steps_done <= 0) return 0;
  int64_t lo = 1, hi = steps_done * plan.grad_accum;  // multiples of the accumulation alone get there
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (steps_after_micro_batches(plan, mid) >= steps_done)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

}  // namespace

std::vector<MicroBatchRef> micro_batches_of_step(const StepPlan& plan, int64_t step) {
  std::vector<MicroBatchRef> out;
  const int64_t n = plan.micro_batches_per_epoch;
  if (n <= 0) return out;
  for (int64_t g = micro_batches_at_step(plan, step); g < micro_batches_at_step(plan, step + 1); ++g)
    out.push_back({g / n, g % n});  // g: the run's micro-batch, 0-based
  return out;
}

bool epoch_ends_at(const StepPlan& plan, int64_t steps_done) {
  if (steps_done <= 0 || plan.micro_batches_per_epoch <= 0) return false;
  // An epoch ends at micro-batch count c = (e+1)·n; it is evaluated after the last step completed
  // by then: is there such a c from this step's count up to (not including) the next step's?
  const int64_t n = plan.micro_batches_per_epoch;
  const int64_t first = micro_batches_at_step(plan, steps_done);
  const int64_t next_end = (first + n - 1) / n * n;
  return next_end < micro_batches_at_step(plan, steps_done + 1);
}

double epoch_after(const StepPlan& plan, int64_t steps_done) {
  if (steps_done <= 0 || plan.micro_batches_per_epoch <= 0) return 0.0;
  return static_cast<double>(micro_batches_at_step(plan, steps_done)) /
         static_cast<double>(plan.micro_batches_per_epoch);
}

}  // namespace autotrain::train
