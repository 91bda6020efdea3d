// Parity with transformers, run at test time: tests/reference/model/falcon_reference.py builds
// tiny random models of the three Falcon variants (plus the legacy RefinedWeb naming), saves
// them as model folders and records transformers' logits, losses, gradients and greedy tokens.
// We load the folders with our loader and must reproduce those within the issue's tolerances.
#include <functional>
#include <map>
#include <memory>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "autotrain/model/eval.h"
#include "autotrain/model/falcon.h"
#include "autotrain/model/loader.h"
#include "autotrain/model/loss.h"
#include "autotrain/safetensors/torch.h"
#include "support/test_support.h"
#include "unit/safetensors/python_oracle.h"

namespace autotrain::model {
namespace {

using autotrain::testing::TempDir;

class FalconReference : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto r = autotrain::testing::run_reference_python("model/falcon_reference.py", {dir_->path().string()});
    oracle_ok_ = r.exit_code == 0;
    oracle_log_ = r.out + r.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(oracle_ok_) << "the Python oracle failed:\n" << oracle_log_;
    auto variant = dir_->path() / GetParam();
    auto file = safetensors::SafetensorsFile::open(variant / "expected.safetensors");
    for (const auto& t : file.header().tensors) expected_[t.name] = safetensors::tensor_view(file, t).clone();
    model_ = load_falcon(variant / "model");
  }

  const at::Tensor& want(const std::string& name) { return expected_.at(name); }

  FalconInputs padded_batch() {
    FalconInputs in;
    in.input_ids = want("input_ids");
    in.attention_mask = want("attention_mask");
    return in;
  }

  static double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
    EXPECT_EQ(a.sizes(), b.sizes());
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
  }

  static TempDir* dir_;
  static bool oracle_ok_;
  static std::string oracle_log_;
  std::map<std::string, at::Tensor> expected_;
  std::unique_ptr<FalconForCausalLM> model_;
};

TempDir* FalconReference::dir_ = nullptr;
bool FalconReference::oracle_ok_ = false;
std::string FalconReference::oracle_log_;

TEST_P(FalconReference, LogitsOfPaddedBatch) {
  at::NoGradGuard no_grad;
  at::Tensor logits = model_->forward(padded_batch());
  EXPECT_LE(max_abs_diff(logits, want("logits")), 1e-5);
  // The reference logits are far from constant: a broken model cannot pass by accident.
  EXPECT_GT(want("logits").std().item<double>(), 0.1);
}

// Left padding: the padded queries see no key at all (SDPA's fully masked rows); all logits,
// padding positions included, still match and stay finite.
TEST_P(FalconReference, LogitsOfLeftPaddedBatch) {
  at::NoGradGuard no_grad;
  FalconInputs in;
  in.input_ids = want("left_ids");
  in.attention_mask = want("left_mask");
  at::Tensor logits = model_->forward(in);
  EXPECT_TRUE(logits.isfinite().all().item<bool>());
  EXPECT_LE(max_abs_diff(logits, want("logits_left")), 1e-5);
}

TEST_P(FalconReference, LogitsWithoutMask) {
  at::NoGradGuard no_grad;
  FalconInputs in;
  in.input_ids = want("input_ids").narrow(0, 0, 1);
  EXPECT_LE(max_abs_diff(model_->forward(in), want("logits_nomask")), 1e-5);
}

// The KV cache fed several tokens at a time (prefill, then a chunk that must see the cached
// keys through a bottom-right causal mask, then one token) reproduces the full forward.
TEST_P(FalconReference, KVCacheInChunksMatchesFullForward) {
  at::NoGradGuard no_grad;
  at::Tensor ids = want("input_ids").narrow(0, 0, 1);
  KVCache cache;
  std::vector<at::Tensor> parts;
  for (auto [start, len] : {std::pair<int64_t, int64_t>{0, 5}, {5, 6}, {11, 1}}) {
    FalconInputs in;
    in.input_ids = ids.narrow(1, start, len);
    parts.push_back(model_->forward(in, &cache));
    EXPECT_EQ(cache.length(), start + len);
  }
  EXPECT_LE(max_abs_diff(at::cat(parts, 1), want("logits_nomask")), 1e-5);
}

TEST_P(FalconReference, LogitsOfLongSequence) {
  at::NoGradGuard no_grad;
  FalconInputs in;
  in.input_ids = want("long_ids");
  in.attention_mask = at::ones_like(in.input_ids);
  EXPECT_LE(max_abs_diff(model_->forward(in), want("logits_long")), 1e-5);
}

TEST_P(FalconReference, LossMeanAndSum) {
  at::NoGradGuard no_grad;
  at::Tensor hidden = model_->hidden_states(padded_batch());
  auto mean = causal_lm_loss(model_->lm_head(), hidden, want("labels"), LossReduction::kMean);
  double ref = want("loss").item<double>();
  EXPECT_LE(std::abs(mean.loss.item<double>() - ref) / std::abs(ref), 1e-6);
  EXPECT_EQ(mean.tokens, (11 + 8 + 4));  // lengths 12, 9, 5 minus the last token of each row
  // Sum mode, in small chunks: the same as transformers with num_items_in_batch = 1.
  auto sum = causal_lm_loss(model_->lm_head(), hidden, want("labels"), LossReduction::kSum, /*chunk_tokens=*/5);
  double ref_sum = want("loss_sum").item<double>();
  EXPECT_LE(std::abs(sum.loss.item<double>() - ref_sum) / std::abs(ref_sum), 1e-6);
}

TEST_P(FalconReference, InputAndWeightGradients) {
  at::Tensor* qkv = nullptr;
  for (auto& [name, t] : model_->named_parameters())
    if (name == "transformer.h.0.self_attention.query_key_value.weight") qkv = t;
  ASSERT_NE(qkv, nullptr);
  qkv->set_requires_grad(true);
  FalconInputs in = padded_batch();
  at::Tensor embeds = model_->embed(in.input_ids).detach();
  embeds.set_requires_grad(true);
  in.inputs_embeds = embeds;
  auto loss = causal_lm_loss(model_->lm_head(), model_->hidden_states(in), want("labels"), LossReduction::kMean, 7);
  loss.loss.backward();
  ASSERT_TRUE(embeds.grad().defined());
  EXPECT_LE(max_abs_diff(embeds.grad(), want("embeds_grad")), 1e-4);
  EXPECT_GT(want("embeds_grad").abs().max().item<double>(), 1e-3);
  EXPECT_LE(max_abs_diff(qkv->grad(), want("qkv0_grad")), 1e-4);
}

TEST_P(FalconReference, GreedyDecodingWithKVCache) {
  at::Tensor prompt = want("prompt");
  std::vector<int64_t> ids(prompt.data_ptr<int64_t>(), prompt.data_ptr<int64_t>() + prompt.numel());
  std::vector<int64_t> got = greedy_generate(*model_, ids, 32);
  at::Tensor ref = want("generated");
  std::vector<int64_t> expect(ref.data_ptr<int64_t>(), ref.data_ptr<int64_t>() + ref.numel());
  EXPECT_EQ(got, expect);
}

INSTANTIATE_TEST_SUITE_P(Variants, FalconReference, ::testing::Values("7b", "7b-legacy", "40b", "rw1b"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return "falcon_" + n;
                         });

}  // namespace
}  // namespace autotrain::model

namespace autotrain::model {
namespace {

// `autotrain eval` end to end on the same folders: the CLI's loss is transformers' loss.
TEST_P(FalconReference, EvalCommandMatchesTransformers) {
  auto bin = autotrain::testing::env_var("AUTOTRAIN_BIN");
  ASSERT_TRUE(bin && std::filesystem::exists(*bin)) << "AUTOTRAIN_BIN must name the built CLI (build `autotrain`)";
  auto variant = dir_->path() / GetParam();
  auto r = autotrain::testing::run_command({*bin, "eval", "--model", (variant / "model").string(), "--data",
                                            (variant / "eval.jsonl").string(), "--block-size", "8", "--json",
                                            "--device", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  double ref = want("eval_loss").item<double>();
  EXPECT_LE(std::abs(j["loss"].get<double>() - ref) / ref, 1e-6) << r.out;
  EXPECT_NEAR(j["perplexity"].get<double>(), std::exp(ref), 1e-5 * std::exp(ref));
  EXPECT_EQ(j["tokens"].get<int64_t>(), want("eval_tokens").item<int64_t>());

  // Rows with labels (-100 not scored) and padding (attention_mask 0, dropped): transformers'
  // loss over the scored tokens only.
  r = autotrain::testing::run_command({*bin, "eval", "--model", (variant / "model").string(), "--data",
                                       (variant / "eval_masked.jsonl").string(), "--block-size", "8", "--json",
                                       "--device", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  ref = want("eval_masked_loss").item<double>();
  EXPECT_LE(std::abs(j["loss"].get<double>() - ref) / ref, 1e-6) << r.out;
  EXPECT_EQ(j["tokens"].get<int64_t>(), want("eval_masked_tokens").item<int64_t>());
}

}  // namespace
}  // namespace autotrain::model

namespace autotrain::model {
namespace {

// What we write, transformers loads: a random checkpoint from config.json alone, in shards with
// our index, gives the same logits in transformers as in our model.
TEST(OurCheckpointInTransformers, RandomShardedCheckpointComputesTheSame) {
  TempDir dir;
  std::ofstream(dir.path() / "config.json")
      << R"({"model_type": "falcon", "vocab_size": 97, "hidden_size": 48, "num_attention_heads": 3,
             "num_kv_heads": 3, "num_hidden_layers": 2, "alibi": true, "bias": true, "parallel_attn": false,
             "multi_query": false, "max_position_embeddings": 64})";
  auto folder = dir.path() / "model";
  write_random_checkpoint(dir.path() / "config.json", folder, /*seed=*/11, /*max_shard_bytes=*/40000);
  ASSERT_TRUE(std::filesystem::exists(folder / "model.safetensors.index.json"));
  at::Tensor ids = at::arange(0, 20, at::kLong).mul(7).remainder(97).view({2, 10});
  safetensors::save_tensors(dir.path() / "ids.safetensors", {{"input_ids", ids}});
  auto r = autotrain::testing::run_reference_python(
      "model/load_ours.py",
      {folder.string(), (dir.path() / "ids.safetensors").string(), (dir.path() / "logits.safetensors").string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto f = safetensors::SafetensorsFile::open(dir.path() / "logits.safetensors");
  at::Tensor ref = safetensors::tensor_view(f, f.tensor("logits"));
  at::NoGradGuard no_grad;
  FalconInputs in;
  in.input_ids = ids;
  at::Tensor ours = load_falcon(folder)->forward(in);
  EXPECT_LE((ours - ref).abs().max().item<double>(), 1e-5);
  EXPECT_TRUE(at::equal(ours, random_falcon(FalconConfig::load(dir.path() / "config.json"), 11)->forward(in)));
}

// Falcon ties lm_head to the embedding by default, and transformers 5 decides per checkpoint: a
// stored lm_head.weight with other values is used untied; one stored alone becomes the embedding.
TEST(OurCheckpointInTransformers, StoredHeadIsTiedAsTransformersTiesIt) {
  TempDir dir;
  std::ofstream(dir.path() / "config.json")
      << R"({"model_type": "falcon", "vocab_size": 97, "hidden_size": 32, "num_attention_heads": 4,
             "num_hidden_layers": 2, "max_position_embeddings": 64})";
  write_random_checkpoint(dir.path() / "config.json", dir.path() / "base", /*seed=*/5);
  auto file = safetensors::SafetensorsFile::open(dir.path() / "base" / "model.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& t : file.header().tensors) tensors.emplace_back(t.name, safetensors::tensor_view(file, t).clone());
  at::Tensor ids = at::arange(0, 24, at::kLong).mul(5).remainder(97).view({2, 12});
  safetensors::save_tensors(dir.path() / "ids.safetensors", {{"input_ids", ids}});

  auto variant = [&](const std::string& name, const std::function<void(decltype(tensors)&)>& edit) {
    auto t = tensors;
    edit(t);
    std::filesystem::create_directories(dir.path() / name);
    std::filesystem::copy_file(dir.path() / "base" / "config.json", dir.path() / name / "config.json");
    safetensors::save_tensors(dir.path() / name / "model.safetensors", t);
    return dir.path() / name;
  };
  const auto embedding = [&] {
    for (const auto& [n, t] : tensors)
      if (n == "transformer.word_embeddings.weight") return t;
    return at::Tensor();
  }();
  const std::vector<std::filesystem::path> folders = {
      variant("other_head", [&](auto& t) { t.emplace_back("lm_head.weight", embedding.flip(0).contiguous()); }),
      variant("same_head", [&](auto& t) { t.emplace_back("lm_head.weight", embedding.clone()); }),
      variant("head_only", [&](auto& t) {
        for (auto& [n, _] : t)
          if (n == "transformer.word_embeddings.weight") n = "lm_head.weight";
      })};
  at::NoGradGuard no_grad;
  FalconInputs in;
  in.input_ids = ids;
  for (const auto& folder : folders) {
    SCOPED_TRACE(folder.filename().string());
    auto r = autotrain::testing::run_reference_python(
        "model/load_ours.py",
        {folder.string(), (dir.path() / "ids.safetensors").string(), (folder / "logits.safetensors").string()});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto f = safetensors::SafetensorsFile::open(folder / "logits.safetensors");
    at::Tensor ref = safetensors::tensor_view(f, f.tensor("logits"));
    auto model = load_falcon(folder);
    EXPECT_EQ(model->lm_head_tied(), folder.filename() != "other_head");
    EXPECT_LE((model->forward(in) - ref).abs().max().item<double>(), 1e-5);
  }
}

// Every bad input to `eval` is one clear message and exit code 2.
TEST(EvalCommand, UsageErrors) {
  auto bin = autotrain::testing::env_var("AUTOTRAIN_BIN");
  ASSERT_TRUE(bin && std::filesystem::exists(*bin)) << "AUTOTRAIN_BIN must name the built CLI (build `autotrain`)";
  TempDir dir;
  std::ofstream(dir.path() / "d.jsonl") << "{\"input_ids\": [1, 2, 3, 4, 5]}\n";
  std::ofstream(dir.path() / "config.json") << R"({"model_type": "falcon", "vocab_size": 50, "hidden_size": 16,
      "num_attention_heads": 2, "num_hidden_layers": 1, "max_position_embeddings": 32})";
  write_random_checkpoint(dir.path() / "config.json", dir.path() / "m", 1);
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {*bin, "eval", "--data", (dir.path() / "d.jsonl").string(), "--device", "cpu"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return autotrain::testing::run_command(argv);
  };
  std::string m = (dir.path() / "m").string();
  auto r = run({"--model", m, "--adapter", "lora-out"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("--adapter lora-out: no adapter_config.json there"));
  r = run({"--model", (dir.path() / "nope").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("not found. Looked at:"));
  // Above the model's maximum, the block is capped with a warning, as `data` caps BLOCK_SIZE.
  {
    std::ofstream long_rows(dir.path() / "long.jsonl");
    for (int row = 0; row < 4; ++row) long_rows << "{\"input_ids\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n";
  }
  r = autotrain::testing::run_command({*bin, "eval", "--data", (dir.path() / "long.jsonl").string(), "--device", "cpu",
                                       "--model", m, "--block-size", "64", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, ::testing::HasSubstr("--block-size 64 is larger than the model's max_position_embeddings (32"));
  EXPECT_THAT(r.err, ::testing::HasSubstr("using 32"));
  EXPECT_EQ(nlohmann::json::parse(r.out)["tokens"], 31);
  // An id outside the vocabulary is named with its file line, not its place in the stream.
  std::ofstream(dir.path() / "ids.jsonl") << "{\"input_ids\": [1, 2]}\n{\"input_ids\": [3, 50, 4]}\n";
  r = autotrain::testing::run_command({*bin, "eval", "--data", (dir.path() / "ids.jsonl").string(), "--device", "cpu",
                                       "--model", m});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("ids.jsonl:2: token id 50 in \"input_ids\" is outside the model's "
                                          "vocabulary of 50 (ids 0 to 49)"));
  r = run({"--model", m, "--block-size", "8"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("5 tokens, fewer than one block of 8"));
  r = run({"--model", m, "--dtype", "fp8"});
  EXPECT_EQ(r.exit_code, 2);
  // --device takes the words DEVICE takes (cuda:N included); anything else names them.
  r = autotrain::testing::run_command({*bin, "eval", "--data", (dir.path() / "d.jsonl").string(), "--model", m,
                                       "--device", "gpu"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("--device gpu: use auto, cpu, cuda or cuda:N"));
  // An empty --adapter (an unset shell variable) is not "no adapter".
  r = run({"--model", m, "--adapter", ""});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("is empty"));
  r = run({"--model", m, "--block-size", "4", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["tokens"], 3);
  // labels and attention_mask must line up with input_ids; all -100 leaves nothing to score.
  std::ofstream(dir.path() / "lab.jsonl") << "{\"input_ids\": [1, 2, 3], \"labels\": [1, 2]}\n"
                                          << "{\"input_ids\": [1, 2, 3], \"labels\": [-100, -100, -100]}\n"
                                          << "{\"input_ids\": [1, 2, 3], \"labels\": [-7, 2, 3]}\n"
                                          << "{\"input_ids\": [1, 2, 3], \"attention_mask\": [1, 2, 0]}\n";
  auto line = [&](int n) {
    std::ofstream(dir.path() / "one.jsonl") << [&] {
      std::ifstream in(dir.path() / "lab.jsonl");
      std::string l;
      for (int i = 0; i < n; ++i) std::getline(in, l);
      return l + "\n";
    }();
    return autotrain::testing::run_command({*bin, "eval", "--data", (dir.path() / "one.jsonl").string(), "--device",
                                            "cpu", "--model", m, "--block-size", "2"});
  };
  r = line(1);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("\"labels\" must be a list as long as \"input_ids\" (3 ids)"));
  r = line(2);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("every label of the 1 block is -100"));
  r = line(3);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("\"labels\" must hold token ids or -100 (not scored), found -7"));
  r = line(4);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("\"attention_mask\" must hold 0 and 1, found 2"));
}

// Text rows of `eval` go through the model folder's tokenizer: the ids are those of the Hugging
// Face tokenizers library (falcon-7b's tokenizer.json from shared/data).
TEST(EvalData, TextRowsUseTheModelTokenizer) {
  auto shared = autotrain::testing::env_var("AUTOTRAIN_SHARED_DIR");
  ASSERT_TRUE(shared);
  auto tok_dir = std::filesystem::path(*shared) / "data" / "falcon-7b";
  if (!std::filesystem::exists(tok_dir / "tokenizer.json"))
    GTEST_SKIP() << "no shared reference data at " << tok_dir << " (../shared beside the checkout)";
  TempDir dir;
  std::vector<std::string> texts = {"Hello, world!", "A line\nwith \"quotes\", commas and ünïcödé.", "  spaces  "};
  {
    std::ofstream csv(dir.path() / "d.csv");
    csv << "id,text\r\n";
    for (size_t i = 0; i < texts.size(); ++i) {
      std::string q;
      for (char c : texts[i]) q += c == '"' ? std::string("\"\"") : std::string(1, c);
      csv << i << ",\"" << q << "\"\r\n";
    }
  }
  std::vector<int64_t> got;
  try {
    got = read_eval_tokens(dir.path() / "d.csv", "text", tok_dir);
  } catch (const EvalUsageError& e) {
    if (std::string(e.what()).find("does not include") != std::string::npos)
      GTEST_SKIP() << "this build has no tokenizer module: " << e.what();
    throw;
  }
  std::vector<std::string> args = {(tok_dir / "tokenizer.json").string()};
  args.insert(args.end(), texts.begin(), texts.end());
  auto r = autotrain::testing::run_reference_python("model/tokenize_texts.py", args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto want = nlohmann::json::parse(r.out).get<std::vector<int64_t>>();
  EXPECT_EQ(got, want);
  EXPECT_GT(want.size(), 10u);
}

}  // namespace
}  // namespace autotrain::model
