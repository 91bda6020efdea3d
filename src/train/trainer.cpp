// `autotrain train`: one readable loop in the spirit of llm.c. Data comes from the token cache
// (data/prepare.h); the model from the model folder (NF4 when USE_INT4); LoRA from lora.h.
// Per optimizer step: GRADIENT_ACCUMULATION micro-batches whose summed token losses are divided
// by the token count of the whole step (so batch 4 x accumulation 1 and batch 1 x accumulation 4
// take the same update), loss scaling for fp16, clipping, AdamW, the schedule; then logging,
// evaluation, checkpoints and signals.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/autograd.h>

#include "autotrain/data/prepare.h"
#include "autotrain/data/sha256.h"
#include "autotrain/device/cuda_backend.h"
#include "autotrain/device/device_choice.h"
#include "autotrain/dist/launch.h"
#include "autotrain/dist/process_group.h"
#include "autotrain/dist/world.h"
#include "autotrain/io/project_lock.h"
#include "autotrain/io/temp_paths.h"
#include "autotrain/lora/lora.h"
#include "autotrain/lora/merge_command.h"
#include "autotrain/hub/hub.h"
#include "autotrain/model/falcon.h"
#include "autotrain/model/loader.h"
#include "autotrain/model/model_dir.h"
#include "autotrain/model/loss.h"
#include "autotrain/quant/bnb_checkpoint.h"
#include "autotrain/quant/linear4bit.h"
#include "autotrain/train/adamw.h"
#include "autotrain/train/loss_scaler.h"
#include "autotrain/train/schedule.h"
#include "autotrain/train/train_command.h"
#include "checkpoint_io.h"
#include "project_files.h"

namespace autotrain::train {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// ---- signals: finish the step, checkpoint, exit 130/143 (SLURM preemption sends SIGTERM) ----

std::atomic<int> g_signal{0};
std::atomic<int64_t> g_signal_ns{0};  // when the first one came (CLOCK_MONOTONIC)
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<int64_t>::is_always_lock_free,
              "the signal handler needs lock-free atomics");

// Which of stdout/stderr were terminals when training started (isatty then: after a hangup the
// kernel has already made every call on them fail, tcgetattr included).
std::atomic<bool> g_stdout_tty{false}, g_stderr_tty{false};

// The terminal went away (a dropped ssh session): writing to it now fails (EIO), and a failed
// log line must not cost the checkpoint; a pipe to a `tee` that died with the session would
// raise SIGPIPE. Terminal output goes to /dev/null from here on, and SIGPIPE is ignored (a write
// to a dead pipe fails instead). Async-signal-safe calls only.
std::atomic<bool> g_terminal_gone{false};  // a SIGHUP came: the saved terminal fds are dead

void away_from_the_terminal() {
  g_terminal_gone.store(true);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGPIPE, &ignore, nullptr);
  const int null_fd = ::open("/dev/null", O_WRONLY);
  if (null_fd < 0) return;
  if (g_stdout_tty.load()) ::dup2(null_fd, STDOUT_FILENO);
  if (g_stderr_tty.load()) ::dup2(null_fd, STDERR_FILENO);
  ::close(null_fd);
}

extern "C" void on_signal(int sig) {
  // Only async-signal-safe calls here (clock_gettime, write, _exit). The first signal asks for a
  // checkpoint after the current step, which can take a while on a 7B model: say so at once.
  struct ErrnoKept {
    int saved = errno;
    ~ErrnoKept() { errno = saved; }
  } errno_kept;
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const int64_t now = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  int none = 0;
  if (g_signal.compare_exchange_strong(none, sig)) {
    g_signal_ns.store(now);
    static const char later_int[] = "\nSIGINT received: finishing this step, then writing a checkpoint (press Ctrl-C "
                                    "again to quit at once)\n";
    static const char later_term[] = "\nSIGTERM received: finishing this step, then writing a checkpoint\n";
    static const char later_hup[] = "\nSIGHUP received: finishing this step, then writing a checkpoint\n";
    if (sig == SIGINT)
      (void)!::write(STDERR_FILENO, later_int, sizeof later_int - 1);
    else if (sig == SIGTERM)
      (void)!::write(STDERR_FILENO, later_term, sizeof later_term - 1);
    else
      (void)!::write(STDERR_FILENO, later_hup, sizeof later_hup - 1);
    if (sig == SIGHUP) away_from_the_terminal();
    return;
  }
  if (sig == SIGHUP) away_from_the_terminal();  // after a SIGTERM too: the terminal is gone all the same
  // A repeat. `timeout` and SLURM can deliver one SIGTERM to the process and another to its group
  // moments apart, so only a Ctrl-C pressed again, a second or more later, means "quit now"
  // (without a checkpoint; the previous one stays whole).
  if (sig == SIGINT && now - g_signal_ns.load() >= 1'000'000'000) {
    static const char quit[] = "\nsecond Ctrl-C: exiting now, without a checkpoint\n";
    (void)!::write(STDERR_FILENO, quit, sizeof quit - 1);
    io::remove_temp_paths_now();  // a checkpoint folder being written goes; the previous one stays
    ::_exit(130);
  }
}

// SIGUSR1 asks for a checkpoint at the end of the current step, and training goes on: SLURM's
// `--signal=USR1@300` warns this way before the time limit, when a checkpoint costs nothing but
// a step that would still be running at the limit's SIGTERM (and the SIGKILL 30 s later) would be
// lost. Handled for the whole command, so one that comes while the model loads is not lost (and
// does not end the process, SIGUSR1's default action).
std::atomic<bool> g_checkpoint_asked{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs lock-free atomics");

std::atomic<bool> g_steps_over{false};  // no step left to checkpoint after (the final writes, --dry-run)

extern "C" void on_checkpoint_request(int) {
  const int saved_errno = errno;  // the interrupted code may be about to read it
  if (g_steps_over.load()) {
    static const char over[] = "\nSIGUSR1 ignored: no training step is left to checkpoint\n";
    (void)!::write(STDERR_FILENO, over, sizeof over - 1);
  } else {
    g_checkpoint_asked.store(true);
    static const char msg[] = "\nSIGUSR1 received: writing a checkpoint at the end of this step, then training on\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
  }
  errno = saved_errno;
}

const char* signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP"; }

class CheckpointRequestScope {
 public:
  CheckpointRequestScope() {
    struct sigaction sa {};
    sa.sa_handler = on_checkpoint_request;
    sa.sa_flags = SA_RESTART;  // a read of the model files goes on rather than failing with EINTR
    sigemptyset(&sa.sa_mask);
    g_checkpoint_asked.store(false);
    g_steps_over.store(false);
    sigaction(SIGUSR1, &sa, &old_);
  }
  ~CheckpointRequestScope() { sigaction(SIGUSR1, &old_, nullptr); }
  CheckpointRequestScope(const CheckpointRequestScope&) = delete;
  CheckpointRequestScope& operator=(const CheckpointRequestScope&) = delete;

 private:
  struct sigaction old_ {};
};

class SignalScope {
 public:
  SignalScope() {
    g_stdout_tty.store(::isatty(STDOUT_FILENO) == 1);
    g_stderr_tty.store(::isatty(STDERR_FILENO) == 1);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    // A signal the process was started with ignored stays ignored: `nohup autotrain train &` must
    // train on when the terminal closes, and a background job of a shell without job control
    // ignores Ctrl-C (as `data` and every other command leave them).
    auto install = [&](int sig, struct sigaction* old) {
      sigaction(sig, nullptr, old);
      if (old->sa_handler != SIG_IGN) sigaction(sig, &sa, nullptr);
    };
    install(SIGINT, &old_int_);
    install(SIGTERM, &old_term_);
    install(SIGHUP, &old_hup_);  // a closed terminal: as a preemption, a checkpoint first
    g_signal.store(0);
    g_signal_ns.store(0);
  }
  ~SignalScope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGHUP, &old_hup_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {}, old_hup_ {};
};

// ---- mixed precision ----

enum class Precision { kFp32, kFp16, kBf16 };

struct AutocastScope {
  AutocastScope(at::DeviceType type, Precision p) : type_(type), on_(p != Precision::kFp32) {
    if (!on_) return;
    at::autocast::set_autocast_dtype(type_, p == Precision::kFp16 ? at::kHalf : at::kBFloat16);
    at::autocast::set_autocast_enabled(type_, true);
  }
  ~AutocastScope() {
    if (!on_) return;
    at::autocast::set_autocast_enabled(type_, false);
    at::autocast::clear_cache();  // casts of the LoRA weights are valid for one forward only
  }
  at::DeviceType type_;
  bool on_;
};

std::string fnv1a_hex(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return fmt::format("{:016x}", h);
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  return fmt::format("{:.1f} {}", b, units[u]);
}

// The keys whose values decide what a run computes: a checkpoint from a run that differs in any
// of them is not this run's.
// MODEL_NAME and DATA_PATH are not among them: where the files are is not what they are, and the
// run's identity holds digests of the data and the model by content (see plan()).
constexpr const char* kRunKeys[] = {"TEXT_COLUMN", "LEARNING_RATE", "NUM_EPOCHS",
                                    "BATCH_SIZE", "BLOCK_SIZE", "TRAINER", "WARMUP_RATIO", "WARMUP_STEPS",
                                    "WEIGHT_DECAY", "GRADIENT_ACCUMULATION", "USE_PEFT", "USE_INT4",
                                    "LORA_R", "LORA_ALPHA", "LORA_DROPOUT", "TARGET_MODULES", "USE_RSLORA",
                                    "SEED", "SCHEDULER", "MAX_GRAD_NORM", "USE_DOUBLE_QUANT", "ADD_EOS_TOKEN",
                                    "TRAIN_ON_COMPLETIONS_ONLY", "RESPONSE_TEMPLATE", "TRAIN_SPLIT",
                                    "VALID_SPLIT", "VALID_FRACTION"};

// What identifies the base model without reading all of its weights (14 GB for Falcon-7B):
// config.json whole, and per weight file its name, size and first and last MiB. A safetensors
// header alone would not do: a fine-tuned copy has the same names, shapes and offsets.
std::string model_digest(const fs::path& dir) {
  constexpr std::streamoff kSample = 1 << 20;
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const std::string ext = e.path().extension().string();
    if (name == "config.json" || ext == ".safetensors" || ext == ".bin" || name.ends_with(".index.json"))
      files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  data::Sha256 h;
  std::string buf;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary | std::ios::ate);
    const std::streamoff size = in ? static_cast<std::streamoff>(in.tellg()) : -1;
    h.update(fmt::format("{}\n{}\n", f.filename().string(), size));
    auto sample = [&](std::streamoff at, std::streamoff n) {
      buf.assign(static_cast<size_t>(n), '\0');
      in.seekg(at);
      in.read(buf.data(), n);
      h.update(buf);
    };
    if (size <= 0) continue;
    if (size <= 2 * kSample) {
      sample(0, size);
    } else {
      sample(0, kSample);
      sample(size - kSample, kSample);
    }
  }
  return h.hex_digest();
}

// Why a checkpoint's run (`recorded`, its trainer_state "run") is not this one (`now`), in words.
// The first entry of `now` that `recorded` (a checkpoint's run identity) holds otherwise, in words.
std::optional<std::string> first_difference(const nlohmann::json& recorded, const ordered_json& now) {
  const nlohmann::json current = nlohmann::json::parse(now.dump());
  for (const auto& [key, value] : current.items()) {
    const nlohmann::json then = recorded.contains(key) ? recorded.at(key) : nlohmann::json();
    if (then == value) continue;
    if (key == "data")
      return "the training data differ (a source file, the tokenizer or a key that changes tokenization)";
    if (key == "model") return "the base model differs (its weights or config.json)";
    if (key == "GRADIENT_ACCUMULATION")
      return fmt::format("GRADIENT_ACCUMULATION x processes was {}, now {} (a step takes that many micro-batches: "
                         "keep the product when resuming on another number of processes)",
                         then.dump(), value.dump());
    return fmt::format("{} was {}, now {}", key, then.dump(), value.dump());
  }
  return std::nullopt;
}

std::string what_differs(const nlohmann::json& recorded, const ordered_json& now) {
  if (!recorded.is_object()) return "it was written by an earlier version of autotrain, which recorded less";
  return first_difference(recorded, now).value_or("its run fingerprint differs");
}

// Whether the CPU lists one of two instruction-set flags (Linux: /proc/cpuinfo), e.g. native bf16
// or fp16 arithmetic; without them LibTorch emulates 16-bit matmuls with conversions around fp32.
bool cpu_has_native(std::string_view flag, std::string_view other_flag) {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line);
    for (std::string w; words >> w;)
      if (w == flag || w == other_flag) return true;
    return false;  // every core lists the same flags
  }
  return true;  // unknown: do not warn
}

// The process's peak resident memory (the figure a CPU run is limited by).
int64_t peak_host_memory_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

// Peak memory the caching allocator has reserved on a CUDA device (what limits a GPU run).
int64_t peak_device_memory_bytes(const at::Device& device) {
  if (device.is_cuda())
    if (const device::CudaBackendApi* api = device::cuda_backend())
      return std::max<int64_t>(api->peak_reserved_bytes(device.index()), 0);
  return 0;
}

// One micro-batch of blocks as [b, S] int64 tensors on `device`.
struct Batch {
  at::Tensor input_ids, labels;
};

// The tokens a micro-batch predicts (shifted labels != -100), read from the cache: every process
// of a data-parallel run knows the whole step's count, which the loss is divided by, without
// asking the others.
int64_t predicted_tokens(const data::TokenBlocks& blocks, const std::vector<int64_t>& indices) {
  int64_t n = 0;
  for (int64_t block : indices) {
    const auto labels = blocks.label(block);
    for (size_t i = 1; i < labels.size(); ++i) n += labels[i] != -100 ? 1 : 0;
  }
  return n;
}

// The dropout seed of a step's micro-batch: a function of the run's SEED and the micro-batch's
// place alone, so that its masks do not depend on which process computes it, nor on what ran
// before (a resumed run draws what an uninterrupted one would).
uint64_t micro_batch_seed(int64_t seed, int64_t step, int64_t index) {
  uint64_t z = static_cast<uint64_t>(seed) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(step) * 0xBF58476D1CE4E5B9ull ^
               static_cast<uint64_t>(index) * 0x94D049BB133111EBull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;  // splitmix64's finalizer
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (z ^ (z >> 31)) >> 1;  // at::manual_seed takes it as a signed 64-bit value downstream
}

Batch make_batch(const data::TokenBlocks& blocks, const std::vector<int64_t>& indices, const at::Device& device) {
  const int64_t S = blocks.block_size;
  const auto b = static_cast<int64_t>(indices.size());
  at::Tensor ids = at::empty({b, S}, at::kInt), labels = at::empty({b, S}, at::kInt);
  for (int64_t r = 0; r < b; ++r) {
    std::memcpy(ids[r].data_ptr<int32_t>(), blocks.ids(indices[static_cast<size_t>(r)]).data(), sizeof(int32_t) * S);
    std::memcpy(labels[r].data_ptr<int32_t>(), blocks.label(indices[static_cast<size_t>(r)]).data(),
                sizeof(int32_t) * S);
  }
  Batch out;
  out.input_ids = ids.to(at::kLong).to(device);
  out.labels = labels.to(at::kLong).to(device);
  return out;
}

struct EvalOutcome {
  double loss = 0;
  int64_t tokens = 0;
  bool interrupted = false;  // a signal came: no result (the checkpoint must not wait for it)
};

class Run {
 public:
  // `group`: the other processes of a data-parallel run (null for one process).
  Run(const config::Config& cfg, const TrainOptions& options, const dist::WorldInfo& world, dist::ProcessGroup* group)
      : cfg_(cfg), options_(options), world_(world), group_(group), lead_(world.lead()) {}
  int execute();

 private:
  void check_config();
  void check_other_mode_files();
  void check_token_ids() const;
  void load_model();
  void resolve_resume();
  void refuse_other_run_early();
  TrainUsageError other_run_error(const fs::path& checkpoint, bool by_name, const std::string& what) const;
  std::string damaged_checkpoint_hint() const;
  void plan();
  EvalOutcome evaluate(const data::TokenBlocks& blocks, int64_t step);
  // Evaluates after step `done`, logs it and records it for the best-checkpoint choice; false
  // when a signal stopped it (then it is pending, and the checkpoint says so).
  bool evaluate_and_log(int64_t done, bool saving_step);
  double train_step(int64_t step);
  void write_model_files(const fs::path& dir);
  int write_merged_model();
  void check_push();
  std::string upload_later_command() const;
  int push_to_hub();
  // `written_on_signal`: the signal that asked for it between SAVE_STEPS (nullptr: a regular one).
  void checkpoint(int64_t step, const char* written_on_signal = nullptr);
  // The learning rate of step `step` (0-based). As HF Trainer: the schedule advances only when
  // the optimizer ran, so an fp16 step skipped for an overflow does not consume a rate.
  double lr_at(int64_t step) const {
    const double base_lr = cfg_.get_float("LEARNING_RATE");
    return base_lr * lr_factor(schedule_, step - scaler_->state().skipped_steps, plan_.warmup_steps,
                               plan_.total_steps, base_lr);
  }
  // Whether the final weights are the best checkpoint's (or the run's last, by choice).
  bool restore_best_checkpoint();
  // Where checkpoint-<best_step_> may be, most likely first; and the first that exists (else the
  // project's), for trainer_state.json.
  std::vector<fs::path> best_checkpoint_places() const;
  fs::path best_checkpoint_dir() const {
    std::error_code ec;
    for (const auto& p : best_checkpoint_places())
      if (fs::exists(p / "trainer_state.json", ec)) return p;
    return project_ / fmt::format("checkpoint-{}", best_step_);
  }
  ordered_json trainer_state(int64_t step, const char* written_on_signal = nullptr) const;
  void log_line(const ordered_json& rec, bool eval);

  // The signal (and the SIGUSR1 checkpoint request) every rank acts on at the end of a step: in
  // a data-parallel run, one that reached any rank, so that they all stop at the same step.
  std::pair<int, bool> agreed_signal(bool take_request);

  const config::Config& cfg_;
  TrainOptions options_;
  dist::WorldInfo world_;
  dist::ProcessGroup* group_ = nullptr;
  // Rank 0 writes (checkpoints, metrics, the final files); the others compute the same steps on
  // their share of each step's micro-batches.
  bool lead_ = true;
  fs::path project_;
  at::Device device_ = at::kCPU;
  Precision precision_ = Precision::kFp32;
  bool peft_ = true;
  lora::LoraOptions lora_options_;
  std::unique_ptr<model::FalconForCausalLM> model_;
  lora::InjectedLora lora_;
  std::vector<at::Tensor> trainable_;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<DynamicLossScaler> scaler_;
  data::PreparedData data_;
  std::vector<std::pair<int64_t, at::Tensor>> orders_;  // (epoch, its permutation of the training blocks), last two
  StepPlan plan_;
  Schedule schedule_ = Schedule::kLinear;
  std::string fingerprint_;
  ordered_json run_identity_;              // what the fingerprint is made of (kept in checkpoints)
  std::optional<fs::path> resume_from_;
  // The checkpoint a resume would start from and its run identity, read before the token cache
  // is touched (refuse_other_run_early); empty when there is none or it cannot be read yet.
  std::optional<std::pair<fs::path, nlohmann::json>> early_checkpoint_;
  std::vector<fs::path> stale_checkpoints_;  // --resume never: removed when training starts
  int64_t start_step_ = 0;
  // Logging accumulators (part of the checkpoint so a resumed run logs what an uninterrupted one would).
  double log_loss_sum_ = 0;
  int64_t log_steps_ = 0;
  int64_t log_finite_steps_ = 0;  // steps of the window whose loss was finite
  int64_t tokens_seen_ = 0;
  double last_grad_norm_ = 0;
  double run_loss_sum_ = 0;  // every step's (filtered) loss, for the final train_loss as HF reports it
  // fp16: steps skipped in a row for overflowing gradients; past the limit the run has diverged.
  static constexpr int64_t kMaxConsecutiveSkips = 50;
  int64_t consecutive_skips_ = 0;
  int64_t empty_steps_ = 0;      // steps whose blocks held no token to learn from (not applied)
  int64_t log_empty_steps_ = 0;  // such steps in the current logging window
  bool last_step_empty_ = false;
  double next_lr_ = 0;  // the rate the next step will use: what HF Trainer logs as learning_rate
  std::unique_ptr<MetricsLog> metrics_;
  std::chrono::steady_clock::time_point log_clock_ = std::chrono::steady_clock::now();
  int64_t log_tokens_ = 0;
  ordered_json final_metrics_ = ordered_json::object();
  std::vector<fs::path> other_mode_files_to_remove_;  // the other kind's results of this project's last run
  // LOAD_BEST_MODEL_AT_END, as HF Trainer's state.best_metric / best_model_checkpoint: the lowest
  // eval_loss measured at a step that saved a checkpoint (strictly lower replaces: ties keep the
  // earlier). Part of trainer_state.json, so a resumed run knows it.
  std::optional<double> eval_loss_this_step_;
  std::optional<double> best_eval_loss_;
  // An evaluation a signal stopped: saved in the checkpoint, run first when the run resumes, so
  // the resumed run logs and chooses its best checkpoint as an uninterrupted one.
  bool eval_pending_ = false;
  bool resumed_from_extra_ = false;  // the checkpoint resumed from was written on a signal
  // The log lines as HF Trainer keeps them in trainer_state.json's log_history ("learning_rate",
  // not "lr"), saved in each checkpoint for tools that read it; restored on resume.
  ordered_json log_history_ = ordered_json::array();
  int64_t best_step_ = -1;
  std::optional<fs::path> best_recorded_at_;  // best_model_checkpoint of the checkpoint resumed from
  bool tty_ = isatty(STDERR_FILENO) != 0;
};

// A project holds one kind of result. The other kind's files are removed at the end only when
// this project's previous run wrote them (its training_params.json says so); anywhere else they
// are someone's model or adapter (a model folder given as the project), and the run is refused
// before anything is written.
void Run::check_other_mode_files() {
  const auto others = other_mode_files(project_, peft_);
  if (others.empty()) return;
  // A run of this project finished there (its record is written with the final files): the
  // other kind's files are that project's. (Either mode's record: a run stopped between its
  // final writes must not leave the project stuck.)
  if (previous_run_used_peft(project_).has_value()) {
    other_mode_files_to_remove_ = others;
    return;
  }
  throw TrainUsageError(fmt::format(
      "AUTOTRAIN_PROJECT_NAME {} holds {} that no earlier autotrain run of this project wrote (it looks like {}); a "
      "{} run there would leave both kinds, and loaders would combine them: give the project its own folder",
      project_.string(), others.front().filename().string(),
      peft_ ? "a model folder" : "an adapter folder", peft_ ? "LoRA" : "full fine-tuning"));
}

void Run::check_config() {
  project_ = cfg_.get_string("AUTOTRAIN_PROJECT_NAME");
  peft_ = cfg_.get_bool("USE_PEFT");
  // PUSH_TO_HUB without REPO_ID, MERGE_ADAPTER or USE_INT4 without USE_PEFT: refused by
  // Config::resolve already.
  if (const auto missing = cfg_.missing_run_inputs(); !missing.empty())
    throw TrainUsageError(fmt::format("{}", fmt::join(missing, "; ")));
  try {
    schedule_ = parse_schedule(cfg_.get_string("SCHEDULER"));
  } catch (const std::invalid_argument& e) {
    throw TrainUsageError(e.what());
  }
  try {
    device_ = device::choose_device(cfg_.get_string("DEVICE"), "DEVICE");
  } catch (const device::DeviceChoiceError& e) {
    throw TrainUsageError(e.what());
  }
  // Data parallel on GPUs: one GPU per process of the node, by LOCAL_RANK (as torchrun runs),
  // or the one GPU a process sees when the scheduler binds one to each (srun --gpus-per-task=1).
  if (world_.distributed() && device_.is_cuda()) {
    if (device_.index() > 0)
      throw TrainUsageError(fmt::format("DEVICE={} names one GPU, but {} processes share this node: set DEVICE=cuda "
                                        "(each process takes the GPU of its LOCAL_RANK)",
                                        cfg_.get_string("DEVICE"), world_.local_world_size));
    const int64_t visible = at::detail::getCUDAHooks().deviceCount();
    if (visible > 1 && world_.local_rank >= visible)
      throw TrainUsageError(fmt::format("LOCAL_RANK {} has no GPU of its own: this node shows {} GPUs to {} processes; "
                                        "start one process per GPU (--nproc {})",
                                        world_.local_rank, visible, world_.local_world_size, visible));
    device_ = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(visible == 1 ? 0 : world_.local_rank));
    // The process's current device too: what LibTorch creates without a device named (cuBLAS
    // handles, a first context) goes there, not onto another rank's GPU 0.
    c10::impl::getDeviceGuardImpl(at::kCUDA)->setDevice(device_);
  }
  std::string mp = cfg_.get_string("MIXED_PRECISION");
  if (mp.empty()) mp = cfg_.get_bool("USE_FP16") ? "fp16" : "no";
  // fp16 on a CPU only when the CPU was asked for by name: DEVICE=auto that finds no GPU (the
  // tutorial's falcon.env on a laptop) falls back to fp32, the fast choice there.
  const bool cpu_by_name = cfg_.get_string("DEVICE") == "cpu";
  if (mp == "fp16") {
    if (device_.is_cuda() || cpu_by_name) {
      precision_ = Precision::kFp16;
      if (device_.is_cpu() && !cpu_has_native("avx512_fp16", "amx_fp16"))
        fmt::print(stderr,
                   "warning: fp16 autocast on a CPU without native fp16 instructions (avx512_fp16 or amx_fp16) runs "
                   "several times slower than fp32; MIXED_PRECISION=no is faster here\n");
    } else {
      fmt::print(stderr,
                 "warning: fp16 mixed precision with DEVICE={} found no GPU; training in fp32 on the CPU (set "
                 "DEVICE=cpu to run fp16 autocast there anyway)\n",
                 cfg_.get_string("DEVICE"));
    }
  } else if (mp == "bf16") {
    precision_ = Precision::kBf16;
    if (device_.is_cpu() && !cpu_has_native("avx512_bf16", "amx_bf16"))
      fmt::print(stderr,
                 "warning: bf16 on a CPU without native bf16 instructions (avx512_bf16 or amx_bf16) runs several "
                 "times slower than fp32 (8x on a 2-core AVX2 machine); MIXED_PRECISION=no is faster here\n");
  }
  lora_options_.r = cfg_.get_int("LORA_R");
  lora_options_.alpha = cfg_.get_float("LORA_ALPHA");
  lora_options_.dropout = cfg_.get_float("LORA_DROPOUT");
  lora_options_.rslora = cfg_.get_bool("USE_RSLORA");
  lora_options_.target_modules = cfg_.get_string("TARGET_MODULES");
}

void Run::plan() {
  const int64_t max_steps = options_.max_steps ? *options_.max_steps : cfg_.get_int("MAX_STEPS");
  // A data-parallel step takes GRADIENT_ACCUMULATION micro-batches on each process: as one process
  // accumulating over them all (the same data order, the same update), which is what makes the
  // run independent of how many processes share it.
  plan_ = plan_steps(data_.train.count, data_.valid ? data_.valid->count : 0, cfg_.get_int("BATCH_SIZE"),
                     cfg_.get_int("GRADIENT_ACCUMULATION") * world_.world_size, cfg_.get_int("NUM_EPOCHS"), max_steps,
                     cfg_.get_float("WARMUP_RATIO"), cfg_.get_int("WARMUP_STEPS"), cfg_.get_int("LOGGING_STEPS"));
  const auto effective = cfg_.to_json()["effective"];
  ordered_json run;
  for (const char* k : kRunKeys) run[k] = effective.contains(k) ? effective[k] : ordered_json(nullptr);
  // The micro-batches of a step over all processes: a run resumes on another number of processes
  // when the product is the same.
  run["GRADIENT_ACCUMULATION"] = cfg_.get_int("GRADIENT_ACCUMULATION") * world_.world_size;
  run["TOTAL_STEPS"] = plan_.total_steps;
  // Config keys alone do not tell runs apart: the same DATA_PATH and MODEL_NAME may hold other
  // files by now. (DEVICE and MIXED_PRECISION are left out on purpose: moving a run to a GPU,
  // or from fp16 to bf16 after overflows, is a resume, not a new run.)
  run["data"] = data_.inputs_digest;
  run["model"] = model_digest(data_.model_dir);
  run_identity_ = run;
  fingerprint_ = fnv1a_hex(run.dump());
}

// The checkpoint --resume names, as a folder path: "A/checkpoint-15/" (what tab completion gives)
// is "A/checkpoint-15", whose parent is the project folder it was written in.
fs::path named_checkpoint(const std::string& resume) {
  fs::path p = fs::path(resume).lexically_normal();
  while (!p.has_filename() && p.has_relative_path()) p = p.parent_path();
  return p;
}

// The state of the checkpoint --resume names. A path that is no checkpoint is a usage error that
// names the argument (before any project check, which would otherwise blame the project's own
// checkpoints for a mistyped path); a project folder gets its newest checkpoint suggested.
nlohmann::json read_named_checkpoint(const fs::path& dir) {
  try {
    return read_checkpoint_state(dir);
  } catch (const std::runtime_error& e) {
    std::string hint = "give a checkpoint-<step> folder, auto or never";
    std::error_code ec;
    if (const auto inside = list_checkpoints(dir); !inside.empty() && fs::is_directory(dir, ec))
      hint = fmt::format("it is a project folder: resume from its newest checkpoint with --resume {}, or use auto",
                         inside.back().dir.string());
    throw TrainUsageError(fmt::format("--resume {}; {}", e.what(), hint));  // what() starts with the path
  }
}

// Decides where the run starts. Nothing is removed here: `--resume never` removes the old
// checkpoints only once training starts (not on --dry-run, nor when loading the model fails).
void Run::resolve_resume() {
  const auto existing = list_checkpoints(project_);
  if (options_.resume == "never") {
    for (const auto& c : existing) stale_checkpoints_.push_back(c.dir);
    return;
  }
  if (options_.resume != "auto") {
    resume_from_ = named_checkpoint(options_.resume);
    const nlohmann::json state = read_named_checkpoint(*resume_from_);
    if (state.value("fingerprint", "") != fingerprint_)
      throw other_run_error(*resume_from_, true, what_differs(state.value("run", nlohmann::json()), run_identity_));
    // A checkpoint of this run named from elsewhere (another project folder) must not mix this
    // run into a project that holds another run's checkpoints: they are refused as with auto.
    if (!existing.empty()) {
      nlohmann::json own;
      try {
        own = read_checkpoint_state(existing.back().dir);
      } catch (const std::runtime_error&) {
        return;  // damaged: --resume auto says so; the named checkpoint is what this run uses
      }
      if (own.value("fingerprint", "") != fingerprint_)
        throw other_run_error(existing.back().dir, false, what_differs(own.value("run", nlohmann::json()), run_identity_));
    }
    return;
  }
  {
    // A checkpoint-N folder without trainer_state.json is not complete (or was damaged): say so
    // rather than start from an older one, or from step 0, without a word.
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(project_, ec)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_directory() && name.starts_with("checkpoint-") && name.size() > 11 &&
          name.find_first_not_of("0123456789", 11) == std::string::npos &&
          !fs::exists(entry.path() / "trainer_state.json", ec))
        fmt::print(stderr, "warning: {} has no trainer_state.json (incomplete or damaged): not resumed from\n",
                   entry.path().string());
    }
  }
  if (existing.empty()) return;
  const auto& newest = existing.back();
  nlohmann::json state;
  try {
    state = read_checkpoint_state(newest.dir);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("{}; {}", e.what(), damaged_checkpoint_hint()));
  }
  if (state.value("fingerprint", "") != fingerprint_)
    throw other_run_error(newest.dir, false, what_differs(state.value("run", nlohmann::json()), run_identity_));
  resume_from_ = newest.dir;
}

TrainUsageError Run::other_run_error(const fs::path& checkpoint, bool by_name, const std::string& what) const {
  if (by_name)
    return TrainUsageError(fmt::format("--resume {}: that checkpoint belongs to another run ({}); resume with the config "
                                       "and data it was written with, or use --resume never",
                                       checkpoint.string(), what));
  return TrainUsageError(fmt::format(
      "{} holds checkpoints of another run (newest: {}: {}); use --resume never to start over (removes them) or "
      "choose another AUTOTRAIN_PROJECT_NAME",
      project_.string(), checkpoint.filename().string(), what));
}

// Before the token cache is touched: a run that resolve_resume() would refuse for its config keys
// or base model is refused now, and one whose data differ right before the cache is rebuilt
// (PrepareOptions::before_rebuild), so that the old run's cache is not replaced by one that will
// not start. The total step count, which needs the blocks, and anything this cannot read are left
// to resolve_resume().
void Run::refuse_other_run_early() {
  if (options_.resume == "never") return;
  const auto existing = list_checkpoints(project_);
  // The checkpoint this run would start from (named, or the project's newest), and with a named
  // one from elsewhere the project's own newest too (see resolve_resume()).
  std::vector<std::pair<fs::path, bool>> checked;  // checkpoint, named by --resume
  if (options_.resume != "auto") checked.emplace_back(named_checkpoint(options_.resume), true);
  if (!existing.empty()) checked.emplace_back(existing.back().dir, false);
  const auto effective = cfg_.to_json()["effective"];
  ordered_json now;
  for (const char* k : kRunKeys) now[k] = effective.contains(k) ? effective[k] : ordered_json(nullptr);
  now["GRADIENT_ACCUMULATION"] = cfg_.get_int("GRADIENT_ACCUMULATION") * world_.world_size;
  try {
    now["model"] = model_digest(model::resolve_model_dir(cfg_.get_string("MODEL_NAME")).path);
  } catch (const model::ModelError&) {
    // prepare_data() says what is wrong with the model
  }
  for (const auto& [dir, by_name] : checked) {
    nlohmann::json state;
    try {
      // A named checkpoint that cannot be read is said now, before the project's own are judged.
      state = by_name ? read_named_checkpoint(dir) : read_checkpoint_state(dir);
    } catch (const std::runtime_error&) {
      continue;
    }
    if (!state.contains("run") || !state["run"].is_object()) continue;
    if (auto what = first_difference(state["run"], now)) throw other_run_error(dir, by_name, *what);
    if (!early_checkpoint_) early_checkpoint_.emplace(dir, state["run"]);
  }
}

// What to do when the checkpoint --resume auto picked cannot be read (a disk that filled up
// under an older version, files edited by hand).
std::string Run::damaged_checkpoint_hint() const {
  const auto existing = list_checkpoints(project_);
  if (existing.size() >= 2)
    return fmt::format("resume from the one before with --resume {}, or start over with --resume never (removes the "
                       "checkpoints)",
                       existing[existing.size() - 2].dir.string());
  return "start over with --resume never (removes the checkpoints)";
}

void Run::load_model() {
  model::LoadOptions load;
  // Frozen base weights: fp32 on the CPU; on CUDA in the autocast dtype (fp16/bf16) unless they
  // are 4-bit (quantized as they load, or a bitsandbytes 4-bit checkpoint). Norms, embeddings and
  // lm_head of a 4-bit model stay fp32 (prepare_model_for_kbit_training).
  const fs::path dir = data_.model_dir;
  const bool prequantized = quant::is_bnb_4bit_checkpoint(dir);
  load.dtype = at::kFloat;
  if (device_.is_cuda() && !cfg_.get_bool("USE_INT4") && !prequantized && peft_ && precision_ != Precision::kFp32)
    load.dtype = precision_ == Precision::kFp16 ? at::kHalf : at::kBFloat16;
  load.device = device_;
  if (prequantized) {
    if (!peft_) throw TrainUsageError(fmt::format("{} is a 4-bit checkpoint: set USE_PEFT=True", dir.string()));
    model_ = quant::load_bnb_4bit(dir, load);
  } else if (cfg_.get_bool("USE_INT4")) {
    model_ = quant::load_falcon_nf4(dir, load, quant::kNf4DefaultBlocksize, cfg_.get_bool("USE_DOUBLE_QUANT"));
  } else {
    model_ = model::load_falcon(dir, load);
  }
  at::NoGradGuard no_grad;
  if (load.dtype != at::kFloat) {
    for (auto& [name, t] : model_->named_parameters())
      if (name.find("ln") != std::string::npos || name.find("layernorm") != std::string::npos) *t = t->to(at::kFloat);
  }
  std::vector<bool> decay;
  if (peft_) {
    lora_ = lora::inject_lora(*model_, lora_options_, static_cast<uint64_t>(cfg_.get_int("SEED")));
    for (auto* layer : lora_.layers) layer->set_training(true);
    trainable_ = lora_.parameters();
    decay.assign(trainable_.size(), true);
  } else {
    for (auto& [name, t] : model_->named_parameters()) {
      t->requires_grad_(true);
      trainable_.push_back(*t);
      // transformers exempts biases and LayerNorm weights from weight decay.
      const bool norm = name.find("ln") != std::string::npos || name.find("layernorm") != std::string::npos;
      decay.push_back(!norm && name.find("bias") == std::string::npos);
    }
  }
  if (const auto& mc = model_->config(); mc.hidden_dropout > 0 || mc.attention_dropout > 0)
    fmt::print(stderr,
               "warning: {}/config.json sets hidden_dropout={} and attention_dropout={}; transformers would apply them "
               "while training, this trainer does not (LORA_DROPOUT is applied)\n",
               data_.model_dir.string(), mc.hidden_dropout, mc.attention_dropout);
  model_->set_gradient_checkpointing(cfg_.get_bool("GRADIENT_CHECKPOINTING"));
  optimizer_ = std::make_unique<AdamW>(trainable_, decay);
  scaler_ = std::make_unique<DynamicLossScaler>(precision_ == Precision::kFp16);
}

// eval_loss as HF Trainer.evaluate() computes it, the number AutoTrain printed: each batch of
// BATCH_SIZE blocks (in order, the last one short) gives its mean loss per scored token, and the
// batch means are averaged with each batch counted once per block. The same as the mean per
// token whenever every block scores the same number of tokens (TRAINER=default); with
// completion-only labels, blocks with few scored tokens weigh more. A batch with no scored token
// at all is left out (HF's would be nan and make the whole eval_loss nan).
EvalOutcome Run::evaluate(const data::TokenBlocks& blocks, int64_t step) {
  at::NoGradGuard no_grad;
  for (auto* layer : lora_.layers) layer->set_training(false);
  struct TrainingModeBack {
    std::vector<lora::LoraLinear*>& layers;
    ~TrainingModeBack() {
      for (auto* layer : layers) layer->set_training(true);
    }
  } back{lora_.layers};
  // Tests: SIGTERM in the middle of the evaluation after step N (to rank AUTOTRAIN_TEST_SIGNAL_RANK
  // only, when set).
  static const std::optional<int64_t> signal_in_eval = [this]() -> std::optional<int64_t> {
    const char* s = std::getenv("AUTOTRAIN_TEST_SIGNAL_IN_EVAL_AT_STEP");
    const char* only = std::getenv("AUTOTRAIN_TEST_SIGNAL_RANK");
    if (!s || (only && std::atoi(only) != world_.rank)) return std::nullopt;
    return std::atoll(s);
  }();
  // Each batch's summed loss and scored tokens. In a data-parallel run every process scores
  // every W-th batch and the rest are summed in: each slot has one process's value and zeros, so
  // the sums are exact, and the mean below is the one process's mean, bit for bit.
  const int64_t bs = cfg_.get_int("BATCH_SIZE");
  const int64_t batches = (blocks.count + bs - 1) / bs;
  std::vector<double> per_batch(static_cast<size_t>(2 * batches), 0.0);
  for (int64_t batch = 0; batch < batches; ++batch) {
    const int64_t first = batch * bs;
    if (signal_in_eval && *signal_in_eval == step && first == bs) ::kill(::getpid(), SIGTERM);
    // SLURM sends SIGTERM and kills 30 s later: a long evaluation must not stand between the
    // signal and the checkpoint. The processes of a data-parallel run stop together: they ask
    // each other before every W batches (one batch each), so a signal that reached any of them
    // stops them all at the same batch.
    if (group_ == nullptr ? g_signal.load() != 0
                          : batch % world_.world_size == 0 && agreed_signal(/*take_request=*/false).first != 0)
      return {0.0, 0, true};
    if (batch % world_.world_size != world_.rank) continue;
    std::vector<int64_t> idx;
    for (int64_t i = first; i < std::min(first + bs, blocks.count); ++i) idx.push_back(i);
    Batch b = make_batch(blocks, idx, device_);
    AutocastScope ac(device_.type(), precision_);
    model::FalconInputs in;
    in.input_ids = b.input_ids;
    auto out = model::causal_lm_loss(model_->lm_head(), model_->hidden_states(in), b.labels, model::LossReduction::kSum);
    per_batch[static_cast<size_t>(2 * batch)] = out.tokens > 0 ? out.loss.item<double>() : 0.0;
    per_batch[static_cast<size_t>(2 * batch + 1)] = static_cast<double>(out.tokens);
  }
  if (group_ != nullptr) {
    std::vector<at::Tensor> reduced = {at::from_blob(per_batch.data(), {2 * batches}, at::kDouble)};
    group_->all_reduce(reduced);
  }
  double weighted_sum = 0;
  int64_t weight = 0, tokens = 0;
  for (int64_t batch = 0; batch < batches; ++batch) {
    const auto batch_tokens = static_cast<int64_t>(per_batch[static_cast<size_t>(2 * batch + 1)]);
    if (batch_tokens == 0) continue;
    const int64_t n = std::min(bs, blocks.count - batch * bs);
    weighted_sum += per_batch[static_cast<size_t>(2 * batch)] / static_cast<double>(batch_tokens) * static_cast<double>(n);
    weight += n;
    tokens += batch_tokens;
  }
  return {weight > 0 ? weighted_sum / static_cast<double>(weight) : 0.0, tokens};
}

bool Run::evaluate_and_log(int64_t done, bool saving_step) {
  auto ev = evaluate(*data_.valid, done);
  if (ev.interrupted) {
    eval_pending_ = true;
    fmt::print(stderr, "\nthe evaluation after step {} was stopped by the signal; it runs first when the run resumes\n",
               done);
    return false;
  }
  eval_pending_ = false;
  // Weights that give a nan/inf eval loss must not be checkpointed (resume would take them).
  // (fp16 autocast can overflow in evaluation alone, while the scaler keeps the weights
  // finite: there it is logged, and such a step is never the best.)
  if (!std::isfinite(ev.loss) && precision_ != Precision::kFp16)
    throw std::runtime_error(fmt::format(
        "the eval loss became {} at step {}: the weights hold nan or inf values; no checkpoint was written for "
        "this step: lower LEARNING_RATE (now {}) and resume from the last checkpoint, or use --resume never",
        std::isnan(ev.loss) ? "nan" : "inf", done, cfg_.get_float("LEARNING_RATE")));
  // Only a step that saves by SAVE_STRATEGY can be the best (a checkpoint a signal forced would
  // not exist in an uninterrupted run).
  if (std::isfinite(ev.loss) && saving_step) eval_loss_this_step_ = ev.loss;
  final_metrics_["eval_loss"] = ev.loss;
  final_metrics_["eval_perplexity"] = std::exp(ev.loss);
  log_line({{"step", done}, {"epoch", epoch_after(plan_, done)}, {"eval_loss", ev.loss},
            {"eval_perplexity", std::exp(ev.loss)}, {"eval_tokens", ev.tokens}},
           true);
  return true;
}

// One optimizer step; returns the step's mean loss per token.
double Run::train_step(int64_t step) {
  const int64_t bs = cfg_.get_int("BATCH_SIZE");
  const int64_t n = data_.train.count;
  // Each epoch's order: a permutation drawn from SEED + epoch, so any step's data is known
  // without replaying the run (that is what makes resume exact). A step can take the end of one
  // epoch and the start of the next (micro_batches_of_step), so the last two are kept.
  auto order_of = [&](int64_t epoch) -> const int64_t* {
    for (auto& [e, order] : orders_)
      if (e == epoch) return order.data_ptr<int64_t>();
    orders_.erase(orders_.begin(), orders_.end() - std::min<ptrdiff_t>(static_cast<ptrdiff_t>(orders_.size()), 1));
    orders_.emplace_back(epoch, at::randperm(n, at::detail::createCPUGenerator(static_cast<uint64_t>(cfg_.get_int("SEED") + epoch)),
                                             at::TensorOptions().dtype(at::kLong)));
    return orders_.back().second.data_ptr<int64_t>();
  };
  // The step's micro-batches over all processes; this one computes every world_size-th, from its rank.
  struct MicroBatch {
    int64_t index_in_step;
    std::vector<int64_t> blocks;
    int64_t tokens;  // predicted tokens, counted once from the cache
  };
  std::vector<MicroBatch> mine;
  int64_t step_tokens = 0;     // predicted tokens of the whole step: what the loss is divided by
  int64_t step_positions = 0;  // block positions seen (the last micro-batch of an epoch can be short)
  int64_t index = 0;
  for (const auto& [epoch, mb] : micro_batches_of_step(plan_, step)) {
    const int64_t* order = order_of(epoch);
    std::vector<int64_t> idx;
    for (int64_t i = mb * bs; i < std::min((mb + 1) * bs, n); ++i) idx.push_back(order[i]);
    if (idx.empty()) break;
    const int64_t tokens = predicted_tokens(data_.train, idx);
    step_tokens += tokens;
    step_positions += static_cast<int64_t>(idx.size()) * data_.train.block_size;
    if (index % world_.world_size == world_.rank) mine.push_back({index, std::move(idx), tokens});
    ++index;
  }
  if (step_tokens == 0) {
    // Nothing to learn: completions-only labels, and no completion in any of the step's blocks
    // (every process counts the same, so all skip together). No forward pass, and no optimizer
    // step either: AdamW's momentum and weight decay would still move the weights. The schedule
    // goes on (the step is part of the plan); the step stays out of the loss averages (HF's
    // would hold the nan of its 0/0, or the logging filter's stand-in for it).
    tokens_seen_ += step_positions;
    log_tokens_ += step_positions;
    last_grad_norm_ = 0.0;
    ++empty_steps_;
    ++log_empty_steps_;
    last_step_empty_ = true;
    next_lr_ = lr_at(step + 1);
    return std::numeric_limits<double>::quiet_NaN();
  }
  last_step_empty_ = false;
  // The step's loss is summed on the device, in double as the host sum was (the same bits): one
  // host sync per step instead of one per micro-batch, so the CPU can queue the next micro-batch's
  // kernels while the GPU finishes this one's backward.
  at::Tensor loss_total;
  for (const MicroBatch& micro : mine) {
    Batch b = make_batch(data_.train, micro.blocks, device_);
    at::manual_seed(micro_batch_seed(cfg_.get_int("SEED"), step, micro.index_in_step));
    at::Tensor loss;
    {
      AutocastScope ac(device_.type(), precision_);
      model::FalconInputs in;
      in.input_ids = b.input_ids;
      auto out = model::causal_lm_loss(model_->lm_head(), model_->hidden_states(in), b.labels, model::LossReduction::kSum,
                                       model::kDefaultLossChunkTokens, micro.tokens);
      loss = out.loss / static_cast<double>(std::max<int64_t>(step_tokens, 1));
    }
    torch::autograd::backward({scaler_->scale_loss(loss)});
    at::Tensor part = loss.detach().to(at::kDouble);
    loss_total = loss_total.defined() ? loss_total + part : part;
  }
  if (group_ != nullptr) {
    // Data parallel: every process gets the sum of all processes' gradients (and of their parts
    // of the step's loss), the same bits everywhere, so the replicas take the same update.
    std::vector<at::Tensor> reduced;
    for (auto& p : trainable_) {
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);  // no micro-batch here this step
      reduced.push_back(p.grad());
    }
    if (!loss_total.defined()) loss_total = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device_));
    reduced.push_back(loss_total);
    group_->all_reduce(reduced);
  }
  const double loss_sum = loss_total.defined() ? loss_total.item<double>() : 0.0;
  tokens_seen_ += step_positions;
  log_tokens_ += step_positions;
  if (!std::isfinite(loss_sum) && precision_ != Precision::kFp16)
    throw std::runtime_error(fmt::format(
        "the loss became {} at step {} ({}); lower LEARNING_RATE (now {}), keep MAX_GRAD_NORM > 0, or check the "
        "data for empty or broken rows",
        std::isnan(loss_sum) ? "nan" : (loss_sum > 0 ? "inf" : "-inf"),  // not "-nan": the sign of a NaN means nothing
        step + 1, precision_ == Precision::kBf16 ? "bf16" : "fp32", cfg_.get_float("LEARNING_RATE")));

  std::vector<at::Tensor> grads;
  for (auto& p : trainable_)
    if (p.grad().defined()) grads.push_back(p.grad());
  const bool found_inf = scaler_->unscale_and_check(grads);
  const double lr = lr_at(step);
  if (!found_inf) {
    last_grad_norm_ = clip_grad_norm(trainable_, cfg_.get_float("MAX_GRAD_NORM"));
    // fp16's scaler skips such a step; in fp32/bf16 an inf or nan gradient with a finite loss
    // would make every weight nan (clipping multiplies inf by 0), and a checkpoint written next
    // would hold them, which --resume auto would then pick up.
    if (!std::isfinite(last_grad_norm_))
      throw std::runtime_error(fmt::format(
          "the gradients became {} at step {} ({}) although the loss was finite; nothing was applied: lower "
          "LEARNING_RATE (now {}), keep MAX_GRAD_NORM > 0, and resume from the last checkpoint",
          std::isnan(last_grad_norm_) ? "nan" : "inf", step + 1, precision_ == Precision::kBf16 ? "bf16" : "fp32",
          cfg_.get_float("LEARNING_RATE")));
    optimizer_->step(lr, cfg_.get_float("WEIGHT_DECAY"));
    consecutive_skips_ = 0;
  } else {
    last_grad_norm_ = std::numeric_limits<double>::quiet_NaN();  // the gradients overflowed
    ++consecutive_skips_;
  }
  scaler_->update(found_inf);
  next_lr_ = lr_at(step + 1);
  if (consecutive_skips_ >= kMaxConsecutiveSkips)
    throw std::runtime_error(fmt::format(
        "fp16: the gradients overflowed on {} steps in a row (up to step {}; loss scale now {:g}), so nothing was "
        "learned since; the run diverged: lower LEARNING_RATE (now {}), keep MAX_GRAD_NORM > 0, or use "
        "MIXED_PRECISION=bf16 on a GPU that has it",
        consecutive_skips_, step + 1, scaler_->state().scale, cfg_.get_float("LEARNING_RATE")));
  optimizer_->zero_grad();
  return loss_sum;
}

void Run::write_model_files(const fs::path& dir) {
  if (peft_) {
    lora::save_adapter(lora_, lora_options_, cfg_.get_string("MODEL_NAME"), dir);
  } else {
    std::ifstream in(data_.model_dir / "config.json", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    model::save_falcon(*model_, dir, ss.str());
  }
}

ordered_json Run::trainer_state(int64_t step, const char* written_on_signal) const {
  const auto& s = scaler_->state();
  const bool tracks_best = best_step_ >= 0 && cfg_.get_bool("LOAD_BEST_MODEL_AT_END");
  return {{"global_step", step},
          {"written_on_signal", written_on_signal ? ordered_json(written_on_signal) : ordered_json()},
          {"epoch", epoch_after(plan_, step)},
          {"total_steps", plan_.total_steps},
          {"fingerprint", fingerprint_},
          {"loss_scale", s.scale},
          {"growth_tracker", s.growth_tracker},
          {"skipped_steps", s.skipped_steps},
          {"empty_steps", empty_steps_},
          {"log_empty_steps", log_empty_steps_},
          {"log_loss_sum", log_loss_sum_},
          {"log_steps", log_steps_},
          {"log_finite_steps", log_finite_steps_},
          {"tokens_seen", tokens_seen_},
          {"run_loss_sum", run_loss_sum_},
          {"eval_metrics", final_metrics_},
          {"best_eval_loss", best_eval_loss_ ? ordered_json(*best_eval_loss_) : ordered_json()},
          {"best_step", best_step_},
          {"eval_pending", eval_pending_},
          {"run", run_identity_},
          // HF Trainer's trainer_state.json fields, for tools that read checkpoints (AutoTrain's
          // were HF's): the best checkpoint by eval_loss, the schedule, the log history.
          {"best_metric", tracks_best ? ordered_json(*best_eval_loss_) : ordered_json()},
          // As HF: only when the best model is tracked (load_best_model_at_end); otherwise pruning
          // need not keep it, and the name could point at a removed folder.
          // HF's is output_dir/checkpoint-N, the project folder as given; a resume from another
          // working folder reads best_checkpoint_path.
          {"best_model_checkpoint",
           tracks_best ? ordered_json(best_checkpoint_dir().lexically_normal().string()) : ordered_json()},
          {"best_global_step", tracks_best ? ordered_json(best_step_) : ordered_json()},
          {"best_checkpoint_path",
           tracks_best ? ordered_json(fs::absolute(best_checkpoint_dir()).lexically_normal().string()) : ordered_json()},
          {"max_steps", plan_.total_steps},
          {"num_train_epochs", plan_.epochs},
          {"logging_steps", plan_.logging_steps},
          {"eval_steps", cfg_.get_int("EVAL_STEPS")},
          {"save_steps", cfg_.get_int("SAVE_STEPS")},
          {"train_batch_size", cfg_.get_int("BATCH_SIZE")},
          {"is_local_process_zero", true},
          {"is_world_process_zero", true},
          {"log_history", log_history_}};
}

void Run::checkpoint(int64_t step, const char* written_on_signal) {
  if (eval_loss_this_step_ && (!best_eval_loss_ || *eval_loss_this_step_ < *best_eval_loss_)) {
    best_eval_loss_ = eval_loss_this_step_;
    best_step_ = step;
  }
  const bool keep_best = cfg_.get_bool("LOAD_BEST_MODEL_AT_END") && best_step_ >= 0;
  // The tokenizer files too, as HF Trainer saves them with each checkpoint: scripts load a
  // checkpoint folder with AutoTokenizer.from_pretrained.
  save_checkpoint(project_, step,
                  [this](const fs::path& d) {
                    write_model_files(d);
                    write_tokenizer_files(data_.model_dir, d);
                  },
                  trainable_, *optimizer_,
                  device_, trainer_state(step, written_on_signal), cfg_.get_int("SAVE_TOTAL_LIMIT"),
                  keep_best ? best_step_ : -1);
  // Tests: a SIGTERM that comes while checkpoint-N is being written.
  static const std::optional<int64_t> signal_in_checkpoint = [] {
    const char* s = std::getenv("AUTOTRAIN_TEST_SIGNAL_IN_CHECKPOINT_AT_STEP");
    return s ? std::optional<int64_t>(std::atoll(s)) : std::nullopt;
  }();
  if (signal_in_checkpoint && *signal_in_checkpoint == step) ::kill(::getpid(), SIGTERM);
}

// LOAD_BEST_MODEL_AT_END: the weights the project gets are the best checkpoint's, as AutoTrain's
// load_best_model_at_end (and its LoadBestPeftModelCallback) gave them.
std::vector<fs::path> Run::best_checkpoint_places() const {
  const std::string name = fmt::format("checkpoint-{}", best_step_);
  // A run resumed from another folder's checkpoint (--resume DIR) chose its best among that
  // folder's checkpoints until then: the best may be there, or where that checkpoint said it was
  // (a chain of such resumes).
  std::vector<fs::path> candidates = {project_ / name};
  if (resume_from_) candidates.push_back(resume_from_->parent_path() / name);
  if (best_recorded_at_ && best_recorded_at_->filename() == name) candidates.push_back(*best_recorded_at_);
  std::vector<fs::path> places, seen;  // each folder once, however it was named
  for (const auto& c : candidates) {
    fs::path normal = fs::absolute(c).lexically_normal();
    if (std::find(seen.begin(), seen.end(), normal) != seen.end()) continue;
    seen.push_back(std::move(normal));
    places.push_back(c);
  }
  return places;
}

bool Run::restore_best_checkpoint() {
  if (!cfg_.get_bool("LOAD_BEST_MODEL_AT_END") || best_step_ < 0 || best_step_ == plan_.total_steps) return true;
  const std::vector<fs::path> places = best_checkpoint_places();
  for (const auto& best : places) {
    std::error_code ec;
    if (!fs::exists(best / "trainable.safetensors", ec)) continue;
    try {
      if (read_checkpoint_state(best).value("fingerprint", "") != fingerprint_) continue;
    } catch (const std::runtime_error&) {
      continue;
    }
    load_trainable(best, trainable_);
    fmt::print(stderr, "loading the best checkpoint: {} (eval_loss {:.4f}; LOAD_BEST_MODEL_AT_END=True)\n",
               best.string(), *best_eval_loss_);
    return true;
  }
  std::string looked;
  for (const auto& p : places) looked += (looked.empty() ? "" : ", ") + p.string();
  fmt::print(stderr, "warning: the best checkpoint (step {}, eval_loss {:.4f}) is gone (looked at {}); the final weights "
             "are the last step's\n", best_step_, *best_eval_loss_, looked);
  return false;
}

void Run::log_line(const ordered_json& rec, bool eval) {
  if (!lead_) return;  // rank 0 logs for the run
  metrics_->append(rec);
  if (eval) {
    log_history_.push_back({{"epoch", rec["epoch"]},
                            {"eval_loss", rec["eval_loss"]},
                            {"eval_perplexity", rec["eval_perplexity"]},
                            {"step", rec["step"]}});
  } else {
    log_history_.push_back({{"epoch", rec["epoch"]},
                            {"grad_norm", rec["grad_norm"]},
                            {"learning_rate", rec["lr"]},
                            {"loss", rec["loss"]},
                            {"step", rec["step"]}});
  }
  if (tty_) fmt::print(stderr, "\r\033[K");
  if (eval) {
    fmt::print(stderr, "eval  step {:>6}  epoch {:.2f}  eval_loss {:.4f}  perplexity {:.3f}\n", rec["step"].get<int64_t>(),
               rec["epoch"].get<double>(), rec["eval_loss"].get<double>(), rec["eval_perplexity"].get<double>());
  } else {
    fmt::print(stderr, "step {:>6}/{}  epoch {:.2f}  loss {:.4f}  lr {:.3e}  grad_norm {:.3f}  {:.0f} tok/s{}\n",
               rec["step"].get<int64_t>(), plan_.total_steps, rec["epoch"].get<double>(), rec["loss"].get<double>(),
               rec["lr"].get<double>(), rec["grad_norm"].get<double>(), rec["tokens_per_s"].get<double>(),
               scaler_->enabled() ? fmt::format("  scale {:g}", scaler_->state().scale) : std::string());
  }
}

// Every id must index the model's embedding: a tokenizer with added tokens past config.json's
// vocab_size would otherwise fail inside the first step that meets one, after the model loaded
// and possibly after hours of training.
void Run::check_token_ids() const {
  const int64_t vocab = model::FalconConfig::load(data_.model_dir / "config.json").vocab_size;
  auto check = [&](const data::TokenBlocks& blocks, const char* split) {
    const int64_t n = blocks.count * blocks.block_size;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t id = blocks.input_ids[i];
      if (id < 0 || id >= vocab)
        throw TrainUsageError(fmt::format(
            "token id {} in the {} blocks (block {}) is outside the model's vocabulary of {} (vocab_size in {}): "
            "either the token cache in {} was damaged (run `autotrain data --rebuild`), or the tokenizer and the "
            "model of MODEL_NAME do not match (added tokens past vocab_size?: then fix the model folder's tokenizer "
            "files or config.json)",
            id, split, i / blocks.block_size, vocab, (data_.model_dir / "config.json").string(),
            data_.cache_dir.string()));
      // Labels come from the same ids, or -100 (masked): anything else is a damaged cache, which
      // the loss would meet as an out-of-bounds target.
      const int32_t label = blocks.labels[i];
      if (label != -100 && (label < 0 || label >= vocab))
        throw TrainUsageError(fmt::format("label {} in the {} blocks (block {}) of the token cache {} is neither a "
                                          "token id below {} nor -100: the cache is damaged; run `autotrain data "
                                          "--rebuild`",
                                          label, split, i / blocks.block_size, data_.cache_dir.string(), vocab));
    }
  };
  check(data_.train, "train");
  if (data_.valid) check(*data_.valid, "validation");
}

std::pair<int, bool> Run::agreed_signal(bool take_request) {
  int sig = g_signal.load();
  bool asked = take_request && g_checkpoint_asked.exchange(false);
  if (group_ == nullptr) return {sig, asked};
  // The largest signal number any rank saw (SIGTERM over SIGINT over SIGHUP: all mean stop).
  std::vector<at::Tensor> flags = {at::tensor({static_cast<int64_t>(sig), static_cast<int64_t>(asked)}, at::kLong)};
  group_->all_reduce(flags, dist::ReduceOp::kMax);
  sig = static_cast<int>(flags[0][0].item<int64_t>());
  asked = flags[0][1].item<int64_t>() != 0;
  return {sig, asked};
}

int Run::execute() {
  check_config();
  if (lead_) check_push();
  if (lead_) {
    // Checks of the project folder: rank 0's (it alone writes there).
    check_other_mode_files();
    refuse_other_run_early();
  }
  data::PrepareOptions prep;
  prep.write_data_file = false;
  prep.before_rebuild = [this](const std::string& digest) {
    if (!early_checkpoint_) return;
    const auto& [dir, recorded] = *early_checkpoint_;
    ordered_json now;
    now["data"] = digest;
    if (auto what = first_difference(recorded, now)) throw other_run_error(dir, options_.resume != "auto", *what);
  };
  // Rank 0 builds the token cache if needed (however long that takes); the others read it once it
  // is there, and never write it (they do not hold the project lock).
  if (!lead_) prep.read_only = true;
  if (group_ != nullptr && !lead_) group_->barrier(/*without_timeout=*/true);
  data_ = data::prepare_data(cfg_, prep);
  if (group_ != nullptr && lead_) group_->barrier(/*without_timeout=*/true);
  fmt::print(stderr, "{}token cache: {} ({})\n", data_.summary, data_.cache_dir.string(),
             data_.reused ? "reused" : "built");
  check_token_ids();
  if (peft_ && cfg_.get_bool("MERGE_ADAPTER")) {
    // The merge at the end needs 16-bit base weights: said now, not after hours of training.
    std::ifstream in(data_.model_dir / "config.json");
    const auto model_config = nlohmann::json::parse(in, nullptr, false);
    if (model_config.is_object() && model_config.contains("quantization_config"))
      throw TrainUsageError(fmt::format(
          "MERGE_ADAPTER=True: MODEL_NAME {} is a quantized checkpoint (config.json has a quantization_config), and an "
          "adapter merged into it would be quantized again, losing what it learned; set MODEL_NAME to the 16-bit base "
          "(USE_INT4=True quantizes it as it loads), or MERGE_ADAPTER=False",
          cfg_.get_string("MODEL_NAME")));
  }
  plan();
  if (lead_) resolve_resume();
  if (group_ != nullptr) {
    // Every rank runs rank 0's run (the same config, data and model: its fingerprint, and the
    // same arithmetic), and starts where rank 0 decided (a checkpoint, or none).
    const ordered_json mine = {{"fingerprint", fingerprint_},
                               {"precision", static_cast<int>(precision_)},
                               {"device", device_.is_cuda() ? "cuda" : "cpu"},
                               {"resume", resume_from_ ? resume_from_->string() : std::string()}};
    const auto lead = nlohmann::json::parse(group_->broadcast(mine.dump()));
    if (!lead_) {
      for (const char* k : {"fingerprint", "precision", "device"})
        if (lead.at(k) != nlohmann::json::parse(mine.dump()).at(k))
          throw TrainUsageError(fmt::format(
              "rank {} would run another run than rank 0 (its {} differs): every process of a data-parallel run needs "
              "the same config, data, model and DEVICE/MIXED_PRECISION outcome (a node without a GPU falls back to "
              "the CPU)",
              world_.rank, k));
      if (const std::string from = lead.at("resume"); !from.empty()) resume_from_ = fs::path(from);
    }
  }
  if (lead_) fs::create_directories(project_);

  at::manual_seed(static_cast<uint64_t>(cfg_.get_int("SEED")));
  load_model();
  if (peft_) fmt::print(stderr, "{}\n", lora::trainable_parameters_line(*model_));

  // The memory budget before the first step: frozen weights (each tensor once; 4-bit layers with
  // their block statistics), trainable state (weights, gradients, two AdamW moments in fp32), the
  // 4-bit layers' shared dequantization buffer (the largest layer in the compute dtype), and
  // activations (one [B, S, hidden] tensor per layer with gradient checkpointing, ~12 without).
  const double act_bytes = precision_ == Precision::kFp32 ? 4 : 2;
  double weights = 0, trainable = 0, dequant_buffer = 0;
  std::set<const void*> counted;
  for (auto& t : trainable_) {
    trainable += 4.0 * static_cast<double>(t.numel()) * 4;
    counted.insert(t.data_ptr());
  }
  for (auto& [name, t] : model_->named_parameters())
    if (counted.insert(t->data_ptr()).second) weights += static_cast<double>(t->nbytes());
  for (auto& slot : model_->linears()) {
    model::Linear* layer = slot.layer->get();
    if (auto* wrapped = dynamic_cast<lora::LoraLinear*>(layer)) layer = &wrapped->base();
    if (auto* q = dynamic_cast<quant::Linear4bit*>(layer)) {
      weights += static_cast<double>(q->weight().statistics_bytes());
      dequant_buffer = std::max(dequant_buffer, static_cast<double>(q->weight().numel()) * act_bytes);
    }
  }
  const auto& mc = model_->config();
  const double per_layer =
      static_cast<double>(std::min<int64_t>(cfg_.get_int("BATCH_SIZE"), data_.train.count) * data_.train.block_size *
                          mc.hidden_size) *
      act_bytes;
  const double activations = per_layer * static_cast<double>(mc.num_hidden_layers) *
                             (model_->gradient_checkpointing() ? 1.0 : 12.0) + per_layer * 12.0;
  // MAX_STEPS replaces NUM_EPOCHS (as in HF Trainer): the plan says how many epochs that makes.
  const int64_t max_steps = options_.max_steps ? *options_.max_steps : cfg_.get_int("MAX_STEPS");
  const std::string by_max_steps =
      max_steps > 0 ? fmt::format("MAX_STEPS overrides NUM_EPOCHS: {} epoch{}; ", plan_.epochs, plan_.epochs == 1 ? "" : "s")
                    : std::string();
  // A micro-batch holds at most the blocks there are.
  const int64_t batch = std::min<int64_t>(cfg_.get_int("BATCH_SIZE"), data_.train.count);
  fmt::print(stderr,
             "plan: {} step{} ({}{} per epoch, {} micro-batch{}{} of {} block{} each), warm-up {}, log every {}, on {} "
             "({})\nmemory estimate: weights {} + trainable state {}{} + activations {} = {}\n",
             plan_.total_steps, plan_.total_steps == 1 ? "" : "s", by_max_steps, plan_.steps_per_epoch,
             plan_.micro_batches_per_step, plan_.micro_batches_per_step == 1 ? "" : "es",
             !world_.distributed() ? std::string()
             : plan_.micro_batches_per_step == cfg_.get_int("GRADIENT_ACCUMULATION") * world_.world_size
                 ? fmt::format(" ({} per process)", cfg_.get_int("GRADIENT_ACCUMULATION"))
                 : fmt::format(" (shared out over {} processes)", world_.world_size),
             batch, batch == 1 ? "" : "s",
             // transformers' constant schedule has no warm-up (WARMUP_* then act on nothing).
             cfg_.get_string("SCHEDULER") == "constant" ? 0 : plan_.warmup_steps, plan_.logging_steps,
             world_.distributed() ? fmt::format("{} processes ({}; rank 0 on {})", world_.world_size, world_.source,
                                                device_.str())
                                  : device_.str(),
             precision_ == Precision::kFp16 ? "fp16 autocast" : precision_ == Precision::kBf16 ? "bf16 autocast" : "fp32",
             human_bytes(weights), human_bytes(trainable),
             dequant_buffer > 0 ? " + 4-bit dequantization buffer " + human_bytes(dequant_buffer) : std::string(),
             human_bytes(activations),
             human_bytes(weights + trainable + dequant_buffer + activations));
  if (options_.dry_run) {
    g_steps_over.store(true);
    return 0;
  }

  if (lead_) {
    for (const auto& dir : stale_checkpoints_) fs::remove_all(dir);
    for (const auto& dir : unfinished_checkpoints(project_)) {
      fmt::print(stderr, "removing {}: a checkpoint an earlier run did not finish writing\n", dir.string());
      fs::remove_all(dir);
    }
    for (const auto& leftover : io::leftover_temporaries(project_)) {  // final files a killed run was writing
      std::error_code ec;
      fs::remove_all(leftover, ec);
    }
  }
  if (resume_from_) {
    nlohmann::json state;
    try {
      state = load_checkpoint(*resume_from_, trainable_, *optimizer_, device_);
      if (!state.contains("global_step") || !state["global_step"].is_number_integer())
        throw std::runtime_error(fmt::format("{}/trainer_state.json has no integer \"global_step\"",
                                             resume_from_->string()));
    } catch (const c10::OutOfMemoryError&) {
      throw;  // run_train says what to lower
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("cannot resume from {}: {}; {}", resume_from_->string(), e.what(),
                                           options_.resume == "auto"
                                               ? damaged_checkpoint_hint()
                                               : std::string("give another checkpoint, or --resume never")));
    }
    start_step_ = state.at("global_step").get<int64_t>();
    scaler_ = std::make_unique<DynamicLossScaler>(
        precision_ == Precision::kFp16,
        LossScalerState{state.value("loss_scale", 65536.0), state.value("growth_tracker", int64_t{0}),
                        state.value("skipped_steps", int64_t{0})});
    log_loss_sum_ = state.value("log_loss_sum", 0.0);
    log_steps_ = state.value("log_steps", int64_t{0});
    log_finite_steps_ = state.value("log_finite_steps", log_steps_);
    tokens_seen_ = state.value("tokens_seen", int64_t{0});
    empty_steps_ = state.value("empty_steps", int64_t{0});
    log_empty_steps_ = state.value("log_empty_steps", int64_t{0});
    run_loss_sum_ = state.value("run_loss_sum", 0.0);
    final_metrics_ = ordered_json::parse(state.value("eval_metrics", nlohmann::json::object()).dump());
    if (state.contains("log_history") && state["log_history"].is_array())
      log_history_ = ordered_json::parse(state["log_history"].dump());
    eval_pending_ = state.value("eval_pending", false);
    resumed_from_extra_ = !state.value("written_on_signal", nlohmann::json()).is_null();
    if (state.contains("best_eval_loss") && state["best_eval_loss"].is_number()) {
      best_eval_loss_ = state["best_eval_loss"].get<double>();
      best_step_ = state.value("best_step", int64_t{-1});
      // best_checkpoint_path is absolute; checkpoints from before it have only the other (absolute then).
      for (const char* key : {"best_checkpoint_path", "best_model_checkpoint"})
        if (state.contains(key) && state[key].is_string()) {
          best_recorded_at_ = state[key].get<std::string>();
          break;
        }
    }
    if (start_step_ >= plan_.total_steps)
      fmt::print(stderr, "{} is the last step ({}): the run is complete; writing its final files again\n",
                 resume_from_->string(), plan_.total_steps);
    else
      fmt::print(stderr, "resuming from {} (step {} of {})\n", resume_from_->string(), start_step_, plan_.total_steps);
  }
  // Resumed from another folder's checkpoint: that folder's log up to it is this run's log too.
  fs::path history;
  if (resume_from_) {
    std::error_code ec;
    const fs::path from = resume_from_->parent_path().empty() ? fs::path(".") : resume_from_->parent_path();
    if (!fs::equivalent(from, project_, ec) && fs::exists(from / "metrics.jsonl", ec)) history = from / "metrics.jsonl";
  }
  if (lead_) metrics_ = std::make_unique<MetricsLog>(project_ / "metrics.jsonl", start_step_, history);

  const std::string eval_strategy = data_.valid ? cfg_.get_string("EVAL_STRATEGY") : "no";
  const std::string save_strategy = cfg_.get_string("SAVE_STRATEGY");
  // Tests: a real signal through the real handler after step N.
  std::optional<int64_t> signal_at, usr1_at;
  // (Data-parallel tests: AUTOTRAIN_TEST_SIGNAL_RANK=1 sends it to that rank only.)
  const char* signal_rank = std::getenv("AUTOTRAIN_TEST_SIGNAL_RANK");
  if (const char* s = std::getenv("AUTOTRAIN_TEST_SIGNAL_AT_STEP"); s && (!signal_rank || std::atoi(signal_rank) == world_.rank))
    signal_at = std::atoll(s);
  int test_signal = SIGTERM;  // which one: AUTOTRAIN_TEST_SIGNAL=INT|TERM|HUP
  if (const char* s = std::getenv("AUTOTRAIN_TEST_SIGNAL"))
    test_signal = std::string_view(s) == "INT" ? SIGINT : std::string_view(s) == "HUP" ? SIGHUP : SIGTERM;
  if (const char* s = std::getenv("AUTOTRAIN_TEST_SIGUSR1_AT_STEP")) usr1_at = std::atoll(s);

  auto epoch_end = [&](int64_t done) { return epoch_ends_at(plan_, done) || done == plan_.total_steps; };
  auto evaluates_at = [&](int64_t done) {
    return (eval_strategy == "steps" && done % cfg_.get_int("EVAL_STEPS") == 0) ||
           (eval_strategy == "epoch" && epoch_end(done));
  };
  auto saves_at = [&](int64_t done) {
    return (save_strategy == "steps" && done % cfg_.get_int("SAVE_STEPS") == 0) ||
           (save_strategy == "epoch" && epoch_end(done)) || (save_strategy != "no" && done == plan_.total_steps);
  };
  {
    // Signals mean "checkpoint and stop" during the steps only: the final writes below are not
    // interrupted half-way, and a signal then ends the process as usual.
    SignalScope signals;
    // The evaluation a signal stopped before this run's checkpoint was written comes first. Its
    // step's checkpoint exists; as in an uninterrupted run, it may be the best.
    if (eval_pending_ && data_.valid) {
      eval_loss_this_step_.reset();
      // Its checkpoint can be the best only if it is a regular one: one a signal forced goes once
      // superseded (and SAVE_STEPS may have changed since, so saves_at() alone cannot tell).
      if (!evaluate_and_log(start_step_, saves_at(start_step_) && !resumed_from_extra_)) {
        fmt::print(stderr, "\nstopped again before the evaluation finished; checkpoint-{} stays as it was\n",
                   start_step_);
        return 128 + (group_ != nullptr ? agreed_signal(/*take_request=*/false).first : g_signal.load());
      }
      if (eval_loss_this_step_ && (!best_eval_loss_ || *eval_loss_this_step_ < *best_eval_loss_)) {
        best_eval_loss_ = eval_loss_this_step_;
        best_step_ = start_step_;
      }
      eval_loss_this_step_.reset();
    }
    eval_pending_ = false;  // done, or no validation data in this run's config
    const auto started = std::chrono::steady_clock::now();
    log_clock_ = started;  // tokens/s counts training only, not loading
    for (int64_t step = start_step_; step < plan_.total_steps; ++step) {
      double loss = 0;
      try {
        loss = train_step(step);
      } catch (const c10::OutOfMemoryError& e) {
        throw std::runtime_error(fmt::format(
            "out of memory on {} at step {} with BATCH_SIZE={} and BLOCK_SIZE={} (estimated need above); lower "
            "BATCH_SIZE (and raise GRADIENT_ACCUMULATION to keep the effective batch), lower BLOCK_SIZE, keep "
            "GRADIENT_CHECKPOINTING=True, or use USE_INT4=True",
            device_.str(), step + 1, cfg_.get_int("BATCH_SIZE"), data_.train.block_size));
      }
      const int64_t done = step + 1;
      // As HF Trainer's logging_nan_inf_filter (on by default): a non-finite step loss (an fp16 step
      // the scaler skipped) is logged as the window's running sum over one more step, so one
      // overflow does not turn the logged loss into nan.
      if (!last_step_empty_) {  // a step with nothing to learn is in no average
        const double logged_loss = std::isfinite(loss) ? loss : log_loss_sum_ / static_cast<double>(1 + log_steps_);
        log_loss_sum_ += logged_loss;
        run_loss_sum_ += logged_loss;
        log_finite_steps_ += std::isfinite(loss) ? 1 : 0;
        ++log_steps_;
      }
      const double epoch = epoch_after(plan_, done);
      if (tty_) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        const double eta = secs / static_cast<double>(done - start_step_) * static_cast<double>(plan_.total_steps - done);
        const std::string mem = device_.is_cuda() ? " mem " + human_bytes(static_cast<double>(peak_device_memory_bytes(device_)))
                                                  : std::string();
        fmt::print(stderr, "\r\033[K[{}/{}] epoch {:.2f} loss {:.4f} lr {:.2e} {:.0f} tok/s ETA {:.0f}s{}", done,
                   plan_.total_steps, epoch, loss, next_lr_,
                   static_cast<double>(tokens_seen_) / std::max(secs, 1e-9), eta, mem);
      }
      if (done % plan_.logging_steps == 0 || done == plan_.total_steps) {
        const auto now = std::chrono::steady_clock::now();
        const double secs = std::chrono::duration<double>(now - log_clock_).count();
        ordered_json rec = {{"step", done},
                            {"epoch", epoch},
                            // A window with no finite loss at all logs nan (null), not the filter's 0;
                            // so does one made only of steps with nothing to learn.
                            {"loss", log_finite_steps_ > 0 || (log_steps_ == 0 && log_empty_steps_ == 0)
                                         ? log_loss_sum_ / static_cast<double>(std::max<int64_t>(log_steps_, 1))
                                         : std::numeric_limits<double>::quiet_NaN()},
                            {"lr", next_lr_},
                            {"grad_norm", last_grad_norm_},
                            {"tokens", tokens_seen_},
                            {"tokens_per_s", secs > 0 ? static_cast<double>(log_tokens_) / secs : 0.0},
                            {"loss_scale", scaler_->enabled() ? ordered_json(scaler_->state().scale) : ordered_json()},
                            {"skipped_steps", scaler_->state().skipped_steps},
                            {"mem", device_.is_cuda() ? peak_device_memory_bytes(device_) : peak_host_memory_bytes()}};
        log_line(rec, false);
        log_loss_sum_ = 0;
        log_steps_ = 0;
        log_finite_steps_ = 0;
        log_empty_steps_ = 0;
        log_tokens_ = 0;
        log_clock_ = now;
      }
      eval_loss_this_step_.reset();
      if (evaluates_at(done)) evaluate_and_log(done, saves_at(done));
      if (signal_at && done == *signal_at) ::kill(::getpid(), test_signal);
      if (usr1_at && done == *usr1_at) ::kill(::getpid(), SIGUSR1);
      auto [sig, asked] = agreed_signal(/*take_request=*/true);
      const bool regular = saves_at(done);
      if ((regular || sig != 0 || asked) && lead_)
        checkpoint(done, regular ? nullptr : sig != 0 ? signal_name(sig) : "SIGUSR1");
      // A SIGTERM that came while that checkpoint was being written stops the run now: another
      // step could outlast the grace period before SIGKILL, and this step's checkpoint is whole.
      // (After the last step the final files come next, which is no longer to wait for.)
      if (sig == 0 && (regular || asked) && done < plan_.total_steps) sig = agreed_signal(false).first;
      if (asked && sig == 0)
        fmt::print(stderr, "{}checkpoint-{} written (asked for by SIGUSR1); training goes on\n", tty_ ? "\r\033[K" : "",
                   done);
      if (sig != 0) {
        // Every process ends only once rank 0's checkpoint is whole: a scheduler that kills a job
        // step when its first task ends (srun --kill-on-bad-exit) must not cut it short.
        if (group_ != nullptr) group_->barrier();
        // --resume auto picks the newest step; a folder can hold a newer one when this run was
        // resumed from an older checkpoint by name.
        const auto all = list_checkpoints(project_);
        const bool newest = !all.empty() && all.back().step == done;
        fmt::print(stderr, "\n{} received: checkpoint-{} written; to continue, run train again with {}\n",
                   signal_name(sig), done,
                   newest ? std::string("--resume auto (the default)")
                          : "--resume " + (project_ / fmt::format("checkpoint-{}", done)).string());
        return 128 + sig;  // 130 SIGINT, 143 SIGTERM, 129 SIGHUP: as the shell reports a signal's end
      }
    }
  }
  g_steps_over.store(true);
  if (tty_) fmt::print(stderr, "\n");
  if (!lead_) return 0;  // rank 0 writes the run's files

  const bool weights_are_best = restore_best_checkpoint();
  // As HF Trainer, whose best_metric exists only with load_best_model_at_end: without it the
  // weights are the last step's whatever the evaluations said, and a "best" row would mislead.
  if (best_eval_loss_ && cfg_.get_bool("LOAD_BEST_MODEL_AT_END")) {
    final_metrics_["best_eval_loss"] = *best_eval_loss_;
    final_metrics_["best_step"] = best_step_;
    // The card must not say the weights are the best step's when they are not.
    if (!weights_are_best) final_metrics_["weights_step"] = plan_.total_steps;
    // Nor give the last step's eval loss for weights that are an earlier step's: eval_loss and
    // eval_perplexity describe the weights written (the last evaluation stays as last_eval_loss).
    const bool loaded_best = weights_are_best && cfg_.get_bool("LOAD_BEST_MODEL_AT_END") &&
                             best_step_ != plan_.total_steps && final_metrics_.contains("eval_loss");
    if (loaded_best) {
      final_metrics_["last_eval_loss"] = final_metrics_["eval_loss"];
      final_metrics_["eval_loss"] = *best_eval_loss_;
      final_metrics_["eval_perplexity"] = std::exp(*best_eval_loss_);
    }
  }
  write_model_files(project_);
  for (const auto& f : other_mode_files_to_remove_) {
    std::error_code ec;
    if (fs::remove(f, ec))
      fmt::print(stderr, "removed {}: left by this project's earlier {} run\n", f.string(),
                 peft_ ? "full fine-tuning" : "LoRA");
  }
  write_tokenizer_files(data_.model_dir, project_);
  // With the final files, not at the start: a run that fails or is killed leaves the finished
  // run's record beside that run's adapter.
  write_training_params(project_, cfg_);
  // train_loss as HF Trainer defines it, the mean step loss, but over the whole run: HF does not
  // keep its loss sum in checkpoints, so after a resume it divides the resumed part's sum by all
  // the steps.
  // Steps with nothing to learn are in neither the sum nor the count.
  final_metrics_["train_loss"] =
      run_loss_sum_ / static_cast<double>(std::max<int64_t>(plan_.total_steps - empty_steps_, 1));
  final_metrics_["steps"] = plan_.total_steps;
  final_metrics_["tokens"] = tokens_seen_;
  final_metrics_["skipped_steps"] = scaler_->state().skipped_steps;
  write_model_card(project_, cfg_, final_metrics_, peft_);
  // Checkpoints that signals asked for between SAVE_STEPS were for continuing this run, which is
  // done: the folder ends as an uninterrupted run leaves it.
  for (const auto& dir : remove_extra_checkpoints(project_, plan_.total_steps + 1, best_step_))
    fmt::print(stderr, "removed {}: written on a signal between regular checkpoints, not needed now the run is "
               "complete\n",
               dir.string());
  if (empty_steps_ > 0)
    fmt::print(stderr,
               "note: {} of {} steps had no token to learn from (completions-only labels, and no completion in "
               "their blocks) and changed nothing; a larger BLOCK_SIZE or BATCH_SIZE puts completions in more "
               "blocks\n",
               empty_steps_, plan_.total_steps);
  fmt::print(stderr, "done: {} written ({})\n", project_.string(),
             peft_ ? "adapter_model.safetensors, adapter_config.json" : "model.safetensors");
  if (peft_ && cfg_.get_bool("MERGE_ADAPTER")) {
    if (const int merged = write_merged_model(); merged != 0) return merged;
  } else if (std::error_code ec; fs::exists(project_ / "merged" / "config.json", ec)) {
    // An earlier run's merge of an earlier adapter: it no longer goes with the files written now.
    fs::remove_all(project_ / "merged", ec);
    fmt::print(stderr, "removed {}: merged from this project's earlier {} (this run has MERGE_ADAPTER=False)\n",
               (project_ / "merged").string(), peft_ ? "adapter" : "run");
  }
  if (cfg_.get_bool("PUSH_TO_HUB")) return push_to_hub();
  return 0;
}

// What uploads the project by hand as PUSH_TO_HUB would (said when it cannot or did not).
std::string Run::upload_later_command() const {
  return fmt::format("autotrain upload {} {} --exclude 'autotrain-data/' --exclude 'checkpoint-*/'",
                     cfg_.get_string("REPO_ID"), project_.string());
}

// The token, REPO_ID and the Hub are checked before training, not after hours of it.
void Run::check_push() {
  if (!cfg_.get_bool("PUSH_TO_HUB")) return;
  const std::string repo = cfg_.get_string("REPO_ID");
  const std::string later = upload_later_command();
  if (!model::looks_like_repo_id(repo) || repo.find('/') == std::string::npos)
    throw TrainUsageError(fmt::format("PUSH_TO_HUB=True: REPO_ID '{}' is not a repository id; write USER/NAME (letters, "
                                      "digits, '-', '_', '.')",
                                      repo));
  if (hub::offline())
    throw TrainUsageError(fmt::format("PUSH_TO_HUB=True: HF_HUB_OFFLINE is set, so nothing can be uploaded to {}; set "
                                      "PUSH_TO_HUB=False (and upload later with `{}`), or unset it",
                                      repo, later));
  hub::Account account;
  try {
    account = hub::whoami(hub::options_from_env(model::process_env, cfg_.secret("HF_TOKEN")));
  } catch (const hub::NetworkError& e) {
    // Not the config's fault: the machine cannot reach the Hub now (exit 1, not 2).
    throw std::runtime_error(fmt::format("PUSH_TO_HUB=True: the Hub cannot be reached to check the token: {}; retry "
                                         "where it can, or set PUSH_TO_HUB=False and upload later with `{}`",
                                         e.what(), later));
  } catch (const hub::HubError& e) {
    throw TrainUsageError(fmt::format("PUSH_TO_HUB=True: {}; or set PUSH_TO_HUB=False and upload later with `{}`",
                                      e.what(), later));
  }
  if (account.token_role == "read")
    throw TrainUsageError(fmt::format("PUSH_TO_HUB=True: the token of {} has the \"read\" role and cannot upload; make "
                                      "one with the \"write\" role (https://huggingface.co/settings/tokens) and store "
                                      "it with `autotrain setup --token -`",
                                      account.name));
  const std::string owner = repo.substr(0, repo.find('/'));
  if (owner != account.name && std::find(account.orgs.begin(), account.orgs.end(), owner) == account.orgs.end())
    fmt::print(stderr, "warning: PUSH_TO_HUB: REPO_ID {} is neither {}'s nor one of their organizations'; unless the "
               "token may write there, the push after training will fail\n",
               repo, account.name);
  fmt::print(stderr, "PUSH_TO_HUB: the token is {}'s; the project goes to {} after training\n", account.name, repo);
}

// PUSH_TO_HUB=True: the project folder to REPO_ID (created private, as AutoTrain created it), in
// one commit: the adapter (or model), tokenizer, card, training_params.json (no token in it),
// metrics and merged/; not the token cache nor the checkpoints (optimizer states: large, and of
// no use to whoever downloads the result; AutoTrain left them out too from 0.7 on).
int Run::push_to_hub() {
  const std::string repo = cfg_.get_string("REPO_ID");
  const std::string later = upload_later_command();
  try {
    const hub::HubOptions options = hub::options_from_env(model::process_env, cfg_.secret("HF_TOKEN"));
    const std::string url = hub::create_repo(repo, hub::RepoType::model, /*private_repo=*/true, options);
    hub::UploadOptions upload;
    upload.commit_message = fmt::format("Upload {} trained with autotrain", peft_ ? "adapter" : "model");
    upload.exclude = {"autotrain-data/", "checkpoint-*/", ".autotrain.lock", "*.tmp-*"};
    const hub::UploadSummary s = hub::upload_folder(project_, repo, hub::RepoType::model, upload, options);
    if (s.committed)
      fmt::print(stderr, "pushed: {} ({} files changed, {} uploaded)\n", s.commit_url.empty() ? url : s.commit_url,
                 s.changed, hub::human_bytes(s.bytes_uploaded));
    else
      fmt::print(stderr, "pushed: {} holds these files already, as they are here\n", url);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: pushing {} to {} failed: {}\nThe trained files are in {}; push them later with `{}`\n",
               project_.string(), repo, e.what(), project_.string(), later);
    return 1;
  }
}

// MERGE_ADAPTER=True: the adapter folded into an fp16 copy of the base, as AutoTrain's
// --merge-adapter did, but in <project>/merged/ rather than over the project folder: there,
// beside adapter_config.json, transformers would load the base + adapter instead (AutoTrain
// 0.6.44), and deleting the adapter (later versions) would lose what was trained.
int Run::write_merged_model() {
  model_.reset();  // the training copy (4-bit, perhaps on a GPU) is not needed any more
  const fs::path out = project_ / "merged";
  const fs::path old = project_ / fmt::format(".merged.old-{}", ::getpid());
  std::error_code ec;
  const bool had_one = fs::exists(out, ec);
  // An earlier run's merged model (this project's: the project lock is ours) makes way, and comes
  // back if this merge fails.
  if (had_one) fs::rename(out, old, ec);
  if (ec) {
    fmt::print(stderr, "error: cannot move the earlier {} aside ({}); the adapter is written, merge it with `autotrain "
               "merge --adapter {} --out DIR`\n",
               out.string(), ec.message(), project_.string());
    return 1;
  }
  fmt::print(stderr, "merging the adapter into an fp16 copy of {} (MERGE_ADAPTER=True)\n", cfg_.get_string("MODEL_NAME"));
  try {
    lora::MergeCommandOptions o;
    o.model = cfg_.get_string("MODEL_NAME");
    o.adapter = project_.string();
    o.out = out.string();
    o.dtype = "fp16";
    const lora::MergeCommandResult r = lora::run_merge_command(o);
    fmt::print(stderr, "merged: {} ({} layers, {:.1f} MB of weights)\n", out.string(), r.modules.size(),
               static_cast<double>(r.bytes) / 1e6);
  } catch (const std::exception& e) {
    fs::remove_all(out, ec);
    if (had_one) fs::rename(old, out, ec);
    fmt::print(stderr, "error: merging the adapter failed: {}\nThe adapter in {} is complete; merge it later with "
               "`autotrain merge --adapter {} --out DIR`\n",
               e.what(), project_.string(), project_.string());
    return 1;
  }
  if (had_one) fs::remove_all(old, ec);
  return 0;
}

}  // namespace

namespace {

// The other processes of a data-parallel run print what rank 0 prints (the same config, the
// same steps): their standard error goes to /dev/null while they train, and comes back for an
// error of their own (the exception leaves this scope before it is printed).
class QuietFollower {
 public:
  explicit QuietFollower(bool quiet) {
    if (!quiet) return;
    saved_ = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
    const int null_fd = ::open("/dev/null", O_WRONLY);
    if (saved_ >= 0 && null_fd >= 0) ::dup2(null_fd, STDERR_FILENO);
    if (null_fd >= 0) ::close(null_fd);
  }
  ~QuietFollower() {
    if (saved_ < 0) return;
    // After a hangup the terminal is gone: writing an error there would fail (EIO).
    if (!g_terminal_gone.load()) ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
  }
  QuietFollower(const QuietFollower&) = delete;
  QuietFollower& operator=(const QuietFollower&) = delete;

 private:
  int saved_ = -1;
};

// The exception being handled, in one line, for the other ranks.
std::string current_failure() {
  try {
    throw;
  } catch (const std::exception& e) {
    const std::string what = e.what();
    return what.substr(0, what.find('\n'));
  } catch (...) {
    return "an unknown error";
  }
}

}  // namespace

int run_train(const config::Config& cfg, const TrainOptions& options) {
  dist::WorldInfo world;
  try {
    world = dist::detect_world();
  } catch (const dist::WorldError& e) {
    throw TrainUsageError(e.what());
  }
  // Quiet from the start (c10d's own warnings while it connects included), and SIGUSR1 taken
  // from the start, so that one that comes while the ranks meet is acted on, by all of them.
  QuietFollower quiet(!world.lead());
  CheckpointRequestScope checkpoint_requests;
  std::unique_ptr<dist::ProcessGroup> group;
  if (world.distributed()) {
    group = dist::ProcessGroup::connect(world, std::chrono::minutes(5), std::chrono::hours(2));
    // A rank waiting for the others after SIGTERM gives up once they have had time to come: they
    // got the signal too (SLURM signals every task; launch passes it on), or one is gone.
    group->set_stop_check([] { return g_signal.load(); }, std::chrono::seconds(20));
  }
  try {
    // Held for the whole run (the token cache, checkpoints and the adapter all live there), by
    // rank 0: the one process of a run that writes there.
    std::optional<io::ProjectLock> lock;
    if (world.lead()) lock.emplace(cfg.get_string("AUTOTRAIN_PROJECT_NAME"));
    Run run(cfg, options, world, group.get());
    try {
      return run.execute();
    } catch (const c10::OutOfMemoryError& e) {
      // The training steps translate their own; this is the model load or an evaluation.
      const std::string what = e.what();
      throw std::runtime_error(fmt::format(
          "out of memory outside the training steps (loading the model or evaluating): {}; use USE_INT4=True for a "
          "4-bit base, lower BATCH_SIZE or BLOCK_SIZE, or free the GPU (nvidia-smi shows what holds it)",
          what.substr(0, what.find('\n'))));
    }
  } catch (const dist::StoppedWaiting& e) {
    fmt::print(stderr, "\n{}\n", e.what());
    group->abort(e.what());  // any rank still waiting stops too
    return 128 + e.signal();
  } catch (const dist::PeerFailure& e) {
    // Another rank failed and said why: rank 0 reports it, the others end quietly; all with the
    // code that tells a launcher the failure was not theirs. Rank 0's store stays until the
    // others have read the reason; the others outlive a failing rank 0.
    if (world.lead()) {
      fmt::print(stderr, "error: {}\n", cfg.redact(e.what()));
    } else if (e.failed_rank() == 0) {
      group->outlive_failed_host(std::chrono::seconds(5));
    }
    return dist::kExitAnotherProcessFailed;
  } catch (...) {
    if (group) group->abort(current_failure());
    throw;
  }
}

}  // namespace autotrain::train
