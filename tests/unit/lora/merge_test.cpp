// `autotrain merge` against PEFT: the merged folder holds PEFT's merge_and_unload() tensors bit
// for bit (fp16, bf16, fp32) with the same config.json; transformers loads it and gives the
// logits of base + adapter; mistakes are refused before anything is written, and an interrupted
// merge leaves nothing behind.
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "autotrain/lora/merge_command.h"
#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/torch.h"
#include "support/reference_run.h"
#include "support/test_support.h"

extern char** environ;

namespace autotrain::lora {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;
namespace st = autotrain::safetensors;

testing::ReferenceRun& oracle() {
  static testing::ReferenceRun run("lora/peft_reference.py", {"make"});
  return run;
}

std::map<std::string, at::Tensor> read_tensors(const fs::path& file) {
  auto f = st::SafetensorsFile::open(file);
  std::map<std::string, at::Tensor> out;
  for (const auto& info : f.header().tensors) out[info.name] = st::tensor_view(f, info).clone();
  return out;
}

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  return nlohmann::json::parse(in);
}

class LoraMerge : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!oracle().have_python()) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest (scripts/test.sh)";
    ASSERT_TRUE(oracle().ok()) << "the PEFT reference script failed:\n" << oracle().log();
  }
  static const fs::path& dir() { return oracle().dir(); }
  static fs::path base() { return dir() / "base"; }
  // PEFT's merged folders for the adapter, one per dtype (float16, bfloat16, float32), made in one
  // run of the script.
  static fs::path peft_merged(const std::string& adapter) {
    const fs::path dest = dir() / ("peft_merged_" + adapter);
    if (!fs::exists(dest)) {
      auto r = oracle().run({"merge", dir().string(), (dir() / adapter).string(), dest.string(), "float16",
                             "bfloat16", "float32"});
      EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    }
    return dest;
  }
  // transformers' fp32 logits for the model folder `model_dir` (the script fails on missing or
  // unexpected tensors).
  static at::Tensor transformers_logits(const fs::path& model_dir) {
    auto r = oracle().run({"logits", dir().string(), model_dir.string()});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return read_tensors(model_dir.string() + ".logits.safetensors").at("logits");
  }
  static at::Tensor expected(const std::string& name) { return read_tensors(dir() / "expected.safetensors").at(name); }
};

TEST_F(LoraMerge, MergedFolderIsPeftsBitForBit) {
  for (const auto& [ours, theirs] : std::vector<std::pair<std::string, std::string>>{
           {"fp16", "float16"}, {"bf16", "bfloat16"}, {"fp32", "float32"}}) {
    testing::TempDir out;
    MergeCommandOptions o;
    o.model = base().string();
    o.adapter = (dir() / "adapter").string();
    o.out = (out.path() / "merged").string();
    o.dtype = ours;
    auto r = run_merge_command(o);
    EXPECT_EQ(r.modules.size(), 8u) << "all-linear on 2 layers";
    EXPECT_FALSE(r.untied_lm_head);
    const fs::path peft = peft_merged("adapter") / theirs;
    auto mine = read_tensors(out.path() / "merged" / "model.safetensors");
    auto reference = read_tensors(peft / "model.safetensors");
    ASSERT_EQ(mine.size(), reference.size()) << ours;
    for (const auto& [name, t] : reference) {
      ASSERT_TRUE(mine.count(name)) << ours << ": " << name << " missing";
      EXPECT_EQ(mine[name].scalar_type(), t.scalar_type()) << ours << ": " << name;
      EXPECT_TRUE(at::equal(mine[name], t)) << ours << ": " << name << " differs from PEFT's merge";
    }
    EXPECT_EQ(read_json(out.path() / "merged" / "config.json"), read_json(peft / "config.json")) << ours;
    // The merge changed the layers it should (the adapter's B is not zero).
    auto source = read_tensors(base() / "model.safetensors");
    const std::string qkv = "transformer.h.0.self_attention.query_key_value.weight";
    EXPECT_FALSE(at::equal(mine[qkv].to(at::kFloat), source[qkv].to(mine[qkv].scalar_type()).to(at::kFloat)));
  }
}

TEST_F(LoraMerge, TransformersLoadsItWithTheAdaptersLogits) {
  testing::TempDir out;
  MergeCommandOptions o;
  o.model = base().string();
  o.adapter = (dir() / "adapter").string();
  o.out = (out.path() / "merged").string();
  o.dtype = "fp32";
  run_merge_command(o);
  // PEFT's logits of base + adapter, unmerged (peft_reference.py make).
  EXPECT_LE((transformers_logits(out.path() / "merged") - expected("logits")).abs().max().item<double>(), 1e-5);
}

// A LoRA on lm_head, which this base ties to the input embedding: PEFT's merge changes the shared
// matrix, so the embedding too; ours writes the merged head on its own and the logits stay those
// of base + adapter.
TEST_F(LoraMerge, LoraOnTheTiedHeadIsWrittenUntied) {
  testing::TempDir out;
  MergeCommandOptions o;
  o.model = base().string();
  o.adapter = (dir() / "lm_head_random").string();
  o.out = (out.path() / "merged").string();
  o.dtype = "fp32";
  auto r = run_merge_command(o);
  EXPECT_TRUE(r.untied_lm_head);
  EXPECT_EQ(r.modules, std::vector<std::string>{"lm_head"});
  auto cfg = read_json(out.path() / "merged" / "config.json");
  EXPECT_EQ(cfg.value("tie_word_embeddings", true), false);
  auto mine = read_tensors(out.path() / "merged" / "model.safetensors");
  auto source = read_tensors(base() / "model.safetensors");
  EXPECT_TRUE(at::equal(mine.at("transformer.word_embeddings.weight"), source.at("transformer.word_embeddings.weight")));
  ASSERT_TRUE(mine.count("lm_head.weight"));
  EXPECT_LE((transformers_logits(out.path() / "merged") - expected("logits_lm_head")).abs().max().item<double>(), 1e-5);
}

class LoraMergeCli : public LoraMerge {
 protected:
  void SetUp() override {
    LoraMerge::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto b = testing::env_var("AUTOTRAIN_BIN");
    if (!b) GTEST_SKIP() << "AUTOTRAIN_BIN not set: run through ctest";
    bin_ = *b;
  }
  testing::CommandResult merge(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = {bin_, "merge"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run_command(argv, env);
  }
  std::string bin_;
};

TEST_F(LoraMergeCli, PrintsASummaryAndJson) {
  testing::TempDir out;
  auto plain = merge({"--model", base().string(), "--adapter", (dir() / "adapter").string(), "--out",
                      (out.path() / "a").string()});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_THAT(plain.out, HasSubstr("merged 8 LoRA layers"));
  EXPECT_TRUE(fs::exists(out.path() / "a" / "generation_config.json")) << "the source's files travel along";
  auto json = merge({"--model", base().string(), "--adapter", (dir() / "adapter").string(), "--out",
                     (out.path() / "b").string(), "--dtype", "bf16", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["merged_layers"], 8);
  EXPECT_EQ(j["dtype"], "bf16");
  EXPECT_EQ(j["untied_lm_head"], false);
  EXPECT_GT(j["bytes"].get<int64_t>(), 0);
  // Without --model: the base the adapter names (train writes MODEL_NAME there).
  fs::copy(dir() / "adapter", out.path() / "named");
  auto named = read_json(out.path() / "named" / "adapter_config.json");
  named["base_model_name_or_path"] = base().string();
  std::ofstream(out.path() / "named" / "adapter_config.json") << named.dump(2);
  auto by_name = merge({"--adapter", (out.path() / "named").string(), "--out", (out.path() / "d").string()});
  ASSERT_EQ(by_name.exit_code, 0) << by_name.err;
  EXPECT_EQ(testing::read_file(out.path() / "d" / "model.safetensors"),
            testing::read_file(out.path() / "a" / "model.safetensors"));
  named["base_model_name_or_path"] = nullptr;
  std::ofstream(out.path() / "named" / "adapter_config.json") << named.dump(2);
  auto unnamed = merge({"--adapter", (out.path() / "named").string(), "--out", (out.path() / "e").string()});
  EXPECT_EQ(unnamed.exit_code, 2) << unnamed.err;
  EXPECT_THAT(unnamed.err, HasSubstr("names no base_model_name_or_path; give the base with --model"));
  // An existing empty folder (a mount point, the working folder) is written into, not replaced.
  fs::create_directories(out.path() / "c");
  struct stat before {};
  ASSERT_EQ(::stat((out.path() / "c").c_str(), &before), 0);
  auto into = merge({"--model", base().string(), "--adapter", (dir() / "adapter").string(), "--out",
                     (out.path() / "c").string()});
  ASSERT_EQ(into.exit_code, 0) << into.err;
  struct stat after {};
  ASSERT_EQ(::stat((out.path() / "c").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "the folder was replaced";
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(out.path() / "c")) files.push_back(e.path().filename());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"config.json", "generation_config.json", "model.safetensors"}));
}

TEST_F(LoraMergeCli, MistakesAreRefusedBeforeAnythingIsWritten) {
  testing::TempDir work;
  const std::string adapter = (dir() / "adapter").string();
  auto refused = [&](const std::vector<std::string>& args, const std::string& says) {
    auto r = merge(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << r.err;
    EXPECT_THAT(r.err, HasSubstr(says)) << ::testing::PrintToString(args);
  };
  const std::string out = (work.path() / "out").string();
  refused({"--model", base().string(), "--adapter", adapter, "--out", out, "--dtype", "int8"}, "--dtype int8");
  refused({"--model", (work.path() / "nothing").string(), "--adapter", adapter, "--out", out}, "nothing");
  refused({"--model", base().string(), "--adapter", (work.path() / "none").string(), "--out", out}, "does not exist");
  // An adapter whose r does not fit its weights (as one made for another model would not).
  fs::copy(dir() / "adapter", work.path() / "wrong_r");
  auto cfg = read_json(work.path() / "wrong_r" / "adapter_config.json");
  cfg["r"] = 8;
  std::ofstream(work.path() / "wrong_r" / "adapter_config.json") << cfg.dump(2);
  refused({"--model", base().string(), "--adapter", (work.path() / "wrong_r").string(), "--out", out},
          "does not fit this model");
  // A 4-bit base: merging into it would quantize the adapter away.
  auto q = testing::run_command({bin_, "quantize", "--model", base().string(), "--out", (work.path() / "q4").string()});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  refused({"--model", (work.path() / "q4").string(), "--adapter", adapter, "--out", out}, "quantized");
  // A base of another architecture.
  fs::copy(base(), work.path() / "llama");
  auto llama = read_json(work.path() / "llama" / "config.json");
  llama["model_type"] = "llama";
  std::ofstream(work.path() / "llama" / "config.json") << llama.dump(2);
  refused({"--model", (work.path() / "llama").string(), "--adapter", adapter, "--out", out}, "is not supported");
  EXPECT_FALSE(fs::exists(out)) << "a refused merge wrote its output";
  // An --out that holds something is never replaced.
  fs::create_directories(work.path() / "full");
  std::ofstream(work.path() / "full" / "keep.txt") << "mine";
  refused({"--model", base().string(), "--adapter", adapter, "--out", (work.path() / "full").string()},
          "not empty");
  EXPECT_TRUE(fs::exists(work.path() / "full" / "keep.txt"));
}

// A SIGTERM while the merged model is being written (the test hook raises one once the weights
// are in the temporary folder): no output and no temporary folder are left.
TEST_F(LoraMergeCli, InterruptedMergeLeavesNothing) {
  std::vector<std::string> env{"AUTOTRAIN_TEST_SIGNAL_WHILE_WRITING=1"};
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  testing::TempDir parent;
  auto killed = merge({"--model", base().string(), "--adapter", (dir() / "adapter").string(), "--out",
                       (parent.path() / "m").string()},
                      env);
  EXPECT_EQ(killed.exit_code, 128 + SIGTERM) << killed.err;
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(parent.path())) left.push_back(e.path().filename());
  EXPECT_TRUE(left.empty()) << "left behind: " << ::testing::PrintToString(left);
}

}  // namespace
}  // namespace autotrain::lora
