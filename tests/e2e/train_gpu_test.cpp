// On a CUDA machine: the tiny default trains 20 steps with an NF4 base, LoRA, fp16 autocast with
// the loss scaler and gradient accumulation; the loss falls, and the final evaluation loss is
// within 1% of the same run in fp32 on the CPU (same NF4 codes, so the only difference is fp16
// rounding; bf16 on the CPU lands within 0.02% of fp32 on this run's shape). A diverging fp16 run
// stops with its error. Two processes of `launch` learn as one accumulating over both. Exits 77
// (skipped) without an NVIDIA driver.
#include <cmath>
#include <cstdio>
#include <sstream>

#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace autotrain {
namespace {

namespace fs = std::filesystem;

std::vector<nlohmann::json> metrics(const fs::path& project) {
  std::vector<nlohmann::json> out;
  std::istringstream in(testing::read_file(project / "metrics.jsonl"));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

double final_eval(const std::vector<nlohmann::json>& m) {
  double v = NAN;
  for (const auto& r : m)
    if (r.contains("eval_loss")) v = r["eval_loss"].get<double>();
  return v;
}

// `autotrain` on configs/tiny.env with the tiny model and data in a temporary folder (written
// once by `autotrain tiny`); projects go there too.
class TinyRun {
 public:
  explicit TinyRun(std::string bin) : bin_(std::move(bin)) {}
  testing::CommandResult operator()(const std::string& command, const std::vector<std::string>& sets = {}) const {
    return run_words({command}, sets);
  }
  fs::path project(const std::string& name) const { return work_.path() / name; }
  // `autotrain launch --nproc N -- train ...` with the same config and sets.
  testing::CommandResult launch_train(int nproc, const std::vector<std::string>& sets) const {
    return run_words({"launch", "--nproc", std::to_string(nproc), "--", "train"}, sets);
  }

 private:
  testing::CommandResult run_words(const std::vector<std::string>& words, const std::vector<std::string>& sets) const {
    std::vector<std::string> argv = {bin_};
    argv.insert(argv.end(), words.begin(), words.end());
    argv.insert(argv.end(), {"-c", std::string(AUTOTRAIN_TEST_SOURCE_DIR) + "/../configs/tiny.env"});
    for (const auto& s : std::vector<std::string>{"MODEL_NAME=" + (work_.path() / "model").string(),
                                                  "DATA_PATH=" + (work_.path() / "data").string(),
                                                  "DATA_FILE=" + (work_.path() / "train.csv").string()})
      argv.insert(argv.end(), {"--set", s});
    for (const auto& s : sets) argv.insert(argv.end(), {"--set", s});
    // The library path goes through: on a GPU host the driver, and the packages gpu-check
    // unpacks into a private sysroot, may be found only through it. The device selection too, so
    // the runs see the GPUs (or MIG slice) this test sees.
    std::vector<std::string> env = {"PATH=/usr/bin:/bin", "HOME=" + work_.path().string(), "HF_HUB_OFFLINE=1"};
    for (const char* name :
         {"LD_LIBRARY_PATH", "AUTOTRAIN_CUDA_BACKEND", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"})
      if (auto v = testing::env_var(name)) env.push_back(std::string(name) + "=" + *v);
    return testing::run_command(argv, env, work_.path());
  }

  std::string bin_;
  testing::TempDir work_;
};

TEST(TrainCuda, Nf4LoraFp16WithAccumulationLearnsLikeTheCpu) {
  auto bin = testing::env_var("AUTOTRAIN_BIN");
  if (!bin) GTEST_SKIP() << "AUTOTRAIN_BIN not set (run through ctest)";
  TinyRun run(*bin);
  auto tiny = run("tiny");
  ASSERT_EQ(tiny.exit_code, 0) << tiny.err;
  const std::vector<std::string> common = {"USE_INT4=True", "GRADIENT_ACCUMULATION=2", "MAX_STEPS=20",
                                           "LOGGING_STEPS=5"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), common.begin(), common.end());
    return extra;
  };
  auto gpu = run("train", with({"DEVICE=cuda", "USE_FP16=True", "AUTOTRAIN_PROJECT_NAME=" + run.project("gpu").string()}));
  ASSERT_EQ(gpu.exit_code, 0) << gpu.err;
  EXPECT_NE(gpu.err.find("fp16 autocast"), std::string::npos) << gpu.err;
  auto cpu = run("train", with({"DEVICE=cpu", "AUTOTRAIN_PROJECT_NAME=" + run.project("cpu").string()}));
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;

  auto mg = metrics(run.project("gpu")), mc = metrics(run.project("cpu"));
  ASSERT_GE(mg.size(), 3u);
  EXPECT_LT(final_eval(mg), mg.front()["loss"].get<double>()) << "the loss did not fall on CUDA";
  EXPECT_EQ(mg.front()["loss_scale"].get<double>(), 65536.0);  // no overflow (CPU fp16 autocast: none in 20 steps)
  const double g = final_eval(mg), c = final_eval(mc);
  // The last training record (the final one is the eval's, which has no skipped_steps).
  int64_t skipped = -1;
  for (const auto& rec : mg)
    if (rec.contains("skipped_steps")) skipped = rec["skipped_steps"].get<int64_t>();
  std::printf("[bench] tiny NF4+LoRA 20 steps: eval loss cuda fp16 %.5f, cpu fp32 %.5f; skipped steps %lld\n", g, c,
              static_cast<long long>(skipped));
  EXPECT_NEAR(g, c, 0.01 * c);
}

// fp16 on CUDA: a diverging run overflows on every step; the loss scaler skips those steps, and
// after 50 in a row the run stops with what to change instead of running on without learning.
TEST(TrainCuda, Fp16RunThatDivergesStopsWithAClearError) {
  auto bin = testing::env_var("AUTOTRAIN_BIN");
  if (!bin) GTEST_SKIP() << "AUTOTRAIN_BIN not set (run through ctest)";
  TinyRun run(*bin);
  ASSERT_EQ(run("tiny").exit_code, 0);
  std::vector<std::string> sets = {"DEVICE=cuda", "USE_FP16=True", "LEARNING_RATE=10", "MAX_STEPS=120",
                                   "SAVE_STRATEGY=no", "AUTOTRAIN_PROJECT_NAME=" + run.project("nan").string()};
  auto r = run("train", sets);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("overflowed on 50 steps in a row"), std::string::npos) << r.err;

  // A GPU index the machine does not have is refused before anything runs.
  sets.push_back("DEVICE=cuda:64");
  auto missing = run("train", sets);
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("CUDA device"), std::string::npos) << missing.err;
}

// Data parallel on CUDA: 2 processes (on one GPU each, or sharing the only one) accumulating over
// 1 micro-batch each learn as 1 process accumulating over 2 (fp16 autocast and NF4 as above; the
// gradient sums go through host memory).
TEST(TrainCuda, DataParallelLearnsLikeOneProcess) {
  auto bin = testing::env_var("AUTOTRAIN_BIN");
  if (!bin) GTEST_SKIP() << "AUTOTRAIN_BIN not set (run through ctest)";
  TinyRun run(*bin);
  ASSERT_EQ(run("tiny").exit_code, 0);
  const std::vector<std::string> common = {"DEVICE=cuda", "USE_FP16=True", "USE_INT4=True", "MAX_STEPS=20",
                                           "LOGGING_STEPS=5", "SAVE_STRATEGY=no"};
  auto one = common, two = common;
  one.insert(one.end(), {"GRADIENT_ACCUMULATION=2", "AUTOTRAIN_PROJECT_NAME=" + run.project("one").string()});
  two.insert(two.end(), {"GRADIENT_ACCUMULATION=1", "AUTOTRAIN_PROJECT_NAME=" + run.project("two").string()});
  auto single = run("train", one);
  ASSERT_EQ(single.exit_code, 0) << single.err;
  auto ddp = run.launch_train(2, two);
  ASSERT_EQ(ddp.exit_code, 0) << ddp.err;
  EXPECT_NE(ddp.err.find("on 2 processes"), std::string::npos) << ddp.err;
  const double a = final_eval(metrics(run.project("one"))), b = final_eval(metrics(run.project("two")));
  std::printf("[bench] tiny NF4+LoRA fp16 20 steps: eval loss 1 process x GA 2 %.5f, 2 processes x GA 1 %.5f\n", a, b);
  EXPECT_NEAR(a, b, 0.01 * a);
}

}  // namespace
}  // namespace autotrain

#include "support/gpu_test_main.h"
