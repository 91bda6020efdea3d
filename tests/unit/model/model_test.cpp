// Loader, loss and layer-swapping behaviour that needs no Python: missing / unexpected /
// mismatched tensors, deterministic random init, zero-copy views, the chunked loss against
// ATen's own cross-entropy, and replacing a Linear through its slot.
#include <fstream>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "autotrain/model/eval.h"
#include "autotrain/model/falcon.h"
#include "autotrain/model/loader.h"
#include "autotrain/model/loss.h"
#include "autotrain/safetensors/torch.h"
#include "support/test_support.h"

namespace autotrain::model {
namespace {

using autotrain::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

const char* kTinyConfig = R"({"model_type": "falcon", "vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_kv_heads": 2, "new_decoder_architecture": true, "bias": false})";

FalconConfig tiny_config() { return FalconConfig::from_json(nlohmann::json::parse(kTinyConfig), "tiny"); }

// Writes `model`'s parameters (plus `extra`, minus `drop`) and config.json into `dir`.
void save_folder(FalconForCausalLM& model, const std::filesystem::path& dir, const std::string& config,
                 const std::string& drop = "", std::vector<std::pair<std::string, at::Tensor>> extra = {}) {
  std::ofstream(dir / "config.json") << config;
  for (auto& [name, t] : model.named_parameters())
    if (name != drop) extra.emplace_back(name, *t);
  safetensors::save_tensors(dir / "model.safetensors", extra);
}

at::Tensor some_ids() { return at::arange(0, 24, at::kLong).remainder(50).view({2, 12}); }

TEST(FalconLoader, RandomInitIsDeterministicAndRoundTrips) {
  at::NoGradGuard no_grad;
  auto a = random_falcon(tiny_config(), 42);
  auto b = random_falcon(tiny_config(), 42);
  auto c = random_falcon(tiny_config(), 43);
  FalconInputs in;
  in.input_ids = some_ids();
  at::Tensor la = a->forward(in);
  EXPECT_TRUE(at::equal(la, b->forward(in)));
  EXPECT_FALSE(at::equal(la, c->forward(in)));
  TempDir dir;
  save_folder(*a, dir.path(), kTinyConfig);
  auto loaded = load_falcon(dir.path());
  EXPECT_TRUE(at::equal(la, loaded->forward(in)));
  EXPECT_TRUE(loaded->lm_head_tied());
}

TEST(FalconLoader, MissingUnexpectedAndMismatchedTensorsAreListed) {
  auto m = random_falcon(tiny_config(), 1);
  TempDir dir;
  save_folder(*m, dir.path(), kTinyConfig, "transformer.h.1.mlp.dense_4h_to_h.weight",
              {{"transformer.h.0.extra.weight", at::zeros({2})}});
  try {
    load_falcon(dir.path());
    ADD_FAILURE() << "must not load";
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing tensors (1):\n  transformer.h.1.mlp.dense_4h_to_h.weight"));
    EXPECT_THAT(e.what(), HasSubstr("unexpected tensors (1):\n  transformer.h.0.extra.weight (in model.safetensors)"));
  }
  // The same weights under a config with another hidden size.
  std::string wrong = kTinyConfig;
  wrong.replace(wrong.find("\"hidden_size\": 32"), 17, "\"hidden_size\": 64");
  TempDir dir2;
  save_folder(*m, dir2.path(), wrong);
  try {
    load_falcon(dir2.path());
    ADD_FAILURE() << "must not load";
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("transformer.word_embeddings.weight: checkpoint [50, 32] vs config.json [50, 64]"));
    EXPECT_THAT(e.what(), Not(HasSubstr("missing tensors"))) << "every tensor is there, with another shape";
  }
  // A layer count far beyond the checkpoint's is refused from the headers, before anything is
  // allocated (1e9 layers would exhaust memory first).
  std::string many = kTinyConfig;
  many.replace(many.find("\"num_hidden_layers\": 2"), 22, "\"num_hidden_layers\": 1000000000");
  TempDir dir3;
  save_folder(*m, dir3.path(), many);
  try {
    load_falcon(dir3.path());
    ADD_FAILURE() << "must not load";
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("config.json says num_hidden_layers 1000000000, but the checkpoint holds 2"));
  }
}

// Quantized checkpoints (GPTQ, bitsandbytes 8-bit, ...) are refused with what they are, not read
// as 16/32-bit weights (an int8 weight cast to float runs and says nonsense), and not reported as
// a config.json that does not belong to the weights. A quantization_config over plain float
// weights is ignored with a warning (transformers would quantize them as it loads).
TEST(FalconLoader, QuantizedCheckpointsAreRefusedAsSuch) {
  auto m = random_falcon(tiny_config(), 1);
  for (const auto& [quantization, method] : std::vector<std::pair<std::string, std::string>>{
           {R"({"quant_method": "gptq", "bits": 4})", "gptq"},
           {R"({"quant_method": "bitsandbytes", "load_in_8bit": true})", "bitsandbytes 8-bit"},
           {R"({"bits": 4})", "an unknown method"}}) {
    std::string config = kTinyConfig;
    config.insert(config.size() - 1, R"(, "quantization_config": )" + quantization);
    EXPECT_EQ(FalconConfig::from_json(nlohmann::json::parse(config), "c").quantization, method);
    TempDir dir;
    save_folder(*m, dir.path(), config, "", {{"transformer.h.0.mlp.dense_4h_to_h.qzeros", at::zeros({4}, at::kInt)}});
    try {
      load_falcon(dir.path());
      ADD_FAILURE() << quantization;
    } catch (const ModelError& e) {
      EXPECT_THAT(e.what(), HasSubstr("config.json's quantization_config says these weights are quantized (" + method + ")"));
    }
    TempDir plain;
    save_folder(*m, plain.path(), config);
    ::testing::internal::CaptureStderr();
    EXPECT_NO_THROW(load_falcon(plain.path())) << quantization;
    EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("but the weights are plain 16/32-bit ones"));
  }
  for (const char* none : {"null", "{}"}) {
    std::string config = kTinyConfig;
    config.insert(config.size() - 1, std::string(R"(, "quantization_config": )") + none);
    EXPECT_EQ(FalconConfig::from_json(nlohmann::json::parse(config), "c").quantization, "") << none;
  }
  // An integer weight with no quantization_config at all.
  TempDir dir;
  const std::string name = "transformer.h.0.mlp.dense_4h_to_h.weight";
  at::Tensor w;
  for (auto& [n, t] : m->named_parameters())
    if (n == name) w = t->to(at::kChar);
  save_folder(*m, dir.path(), kTinyConfig, name, {{name, w}});
  try {
    load_falcon(dir.path());
    ADD_FAILURE();
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr(name + ": stored as I8, not as a 16/32-bit float"));
  }
}

TEST(FalconLoader, UntiedModelNeedsItsLmHead) {
  std::string untied = kTinyConfig;
  untied.insert(untied.size() - 1, R"(, "tie_word_embeddings": false)");
  auto cfg = FalconConfig::from_json(nlohmann::json::parse(untied), "untied");
  auto m = random_falcon(cfg, 5);
  EXPECT_FALSE(m->lm_head_tied());
  TempDir dir;
  save_folder(*m, dir.path(), untied, "lm_head.weight");
  try {
    load_falcon(dir.path());
    ADD_FAILURE();
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing tensors (1):\n  lm_head.weight"));
  }
}

TEST(SafetensorsTorch, ViewsOutliveTheFileAndNeverWriteIt) {
  TempDir dir;
  auto path = dir.path() / "t.safetensors";
  safetensors::save_tensors(path, {{"w", at::arange(6, at::kFloat).view({2, 3})}});
  at::Tensor view;
  {
    auto f = safetensors::SafetensorsFile::open(path);
    view = safetensors::tensor_view(f, f.tensor("w"));
  }  // the file object is gone; the mapping lives on in the tensor
  EXPECT_TRUE(at::equal(view, at::arange(6, at::kFloat).view({2, 3})));
  view.add_(1);  // private mapping: our copy changes, the file does not
  auto again = safetensors::SafetensorsFile::open(path);
  EXPECT_TRUE(at::equal(safetensors::tensor_view(again, again.tensor("w")), at::arange(6, at::kFloat).view({2, 3})));
}

TEST(ChunkedLoss, MatchesAtenCrossEntropyAndItsGradients) {
  at::manual_seed(0);
  const int64_t B = 2, S = 9, H = 16, V = 37;
  auto head = std::make_unique<DenseLinear>(H, V, false, DenseLinear::BiasMode::kFused);
  head->weight = at::randn({V, H});
  at::Tensor hidden = at::randn({B, S, H});
  at::Tensor labels = at::randint(0, V, {B, S}, at::kLong);
  labels.index_put_({0, 3}, -100);
  labels.index_put_({1, 8}, -100);

  // Oracle: ATen's cross_entropy on the full fp32 logits, with autograd.
  at::Tensor w_ref = head->weight.clone().set_requires_grad(true);
  at::Tensor h_ref = hidden.clone().set_requires_grad(true);
  at::Tensor logits = at::linear(h_ref, w_ref).narrow(1, 0, S - 1).reshape({-1, V});
  at::Tensor ref = at::cross_entropy_loss(logits, labels.narrow(1, 1, S - 1).reshape({-1}), {}, at::Reduction::Mean, -100);
  ref.backward();

  for (int64_t chunk : {1, 3, 1000}) {
    head->weight = head->weight.detach().set_requires_grad(true);
    at::Tensor h = hidden.clone().set_requires_grad(true);
    auto out = causal_lm_loss(*head, h, labels, LossReduction::kMean, chunk);
    EXPECT_EQ(out.tokens, B * (S - 1) - 2);  // labels 1..S-1 of each row are targets; two are -100
    EXPECT_NEAR(out.loss.item<double>(), ref.item<double>(), 1e-6) << "chunk " << chunk;
    out.loss.backward();
    EXPECT_LE((h.grad() - h_ref.grad()).abs().max().item<double>(), 1e-6) << "chunk " << chunk;
    EXPECT_LE((head->weight.grad() - w_ref.grad()).abs().max().item<double>(), 1e-6) << "chunk " << chunk;
  }
}

// Under autocast (the trainer enters it for the forward pass only, then runs backward outside
// it) the chunked loss differentiates what the forward computed: the vocabulary projection in
// the autocast dtype, whatever the weight's own dtype (fp32 beside a 4-bit body; fp16/bf16 for
// a 16-bit base). Oracle: ATen's autograd through the same forward under autocast.
TEST(ChunkedLoss, UnderAutocastDifferentiatesTheLowPrecisionProjection) {
  const int64_t B = 2, S = 9, H = 16, V = 37;
  for (auto autocast : {at::kBFloat16, at::kHalf}) {
    for (auto weight_dtype : {at::kFloat, autocast}) {
      SCOPED_TRACE(::testing::Message() << "autocast " << autocast << ", weight " << weight_dtype);
      at::manual_seed(1);
      auto head = std::make_unique<DenseLinear>(H, V, false, DenseLinear::BiasMode::kFused);
      head->weight = at::randn({V, H}).to(weight_dtype);
      at::Tensor hidden = at::randn({B, S, H});
      at::Tensor labels = at::randint(0, V, {B, S}, at::kLong);
      labels.index_put_({1, 4}, -100);
      auto forward_under_autocast = [&](auto&& fn) {
        at::autocast::set_autocast_dtype(at::kCPU, autocast);
        at::autocast::set_autocast_enabled(at::kCPU, true);
        at::Tensor loss = fn();
        at::autocast::set_autocast_enabled(at::kCPU, false);
        at::autocast::clear_cache();
        return loss;
      };
      // The weight trains too (full fine-tuning); with LoRA it is frozen and only the input's
      // gradient is taken.
      at::Tensor h_ref = hidden.clone().set_requires_grad(true);
      at::Tensor w_ref = head->weight.clone().set_requires_grad(true);
      at::Tensor ref = forward_under_autocast([&] {
        at::Tensor logits = at::linear(h_ref, w_ref).to(at::kFloat).narrow(1, 0, S - 1).reshape({-1, V});
        return at::cross_entropy_loss(logits, labels.narrow(1, 1, S - 1).reshape({-1}), {}, at::Reduction::Sum, -100);
      });
      ref.backward();
      auto max_diff = [](const at::Tensor& a, const at::Tensor& b) {
        return (a.to(at::kFloat) - b.to(at::kFloat)).abs().max().item<double>();
      };
      for (int64_t chunk : {3, 1000}) {
        at::Tensor h = hidden.clone().set_requires_grad(true);
        head->weight = w_ref.detach().clone().set_requires_grad(true);
        at::Tensor loss = forward_under_autocast(
            [&] { return causal_lm_loss(*head, h, labels, LossReduction::kSum, chunk).loss; });
        EXPECT_NEAR(loss.item<double>(), ref.item<double>(), 1e-5 * ref.item<double>()) << "chunk " << chunk;
        loss.backward();
        ASSERT_TRUE(h.grad().defined());
        EXPECT_EQ(h.grad().scalar_type(), at::kFloat);
        EXPECT_LE(max_diff(h.grad(), h_ref.grad()), 1e-4 * h_ref.grad().abs().max().item<double>()) << chunk;
        ASSERT_TRUE(head->weight.grad().defined());
        EXPECT_EQ(head->weight.grad().scalar_type(), weight_dtype);
        // One chunk is the same computation as autograd's, to the bit; several sum their 16-bit
        // partial products in fp32, another rounding (0.3% of the largest entry measured).
        const double w_diff = max_diff(head->weight.grad(), w_ref.grad());
        if (chunk >= B * S)
          EXPECT_EQ(w_diff, 0.0);
        else
          EXPECT_LE(w_diff, 1e-2 * w_ref.grad().abs().max().to(at::kFloat).item<double>()) << chunk;
      }
    }
  }
}

// A stand-in for the QLoRA layers: wraps the original and counts calls.
class CountingLinear : public Linear {
 public:
  CountingLinear(LinearPtr inner, int* calls) : inner_(std::move(inner)), calls_(calls) {}
  at::Tensor forward(const at::Tensor& x) const override {
    ++*calls_;
    return inner_->forward(x) * 0;  // visibly changes the output
  }
  int64_t in_features() const override { return inner_->in_features(); }
  int64_t out_features() const override { return inner_->out_features(); }
  std::vector<std::pair<std::string, at::Tensor*>> named_tensors() override { return inner_->named_tensors(); }

 private:
  LinearPtr inner_;
  int* calls_;
};

TEST(FalconLinears, EveryProjectionIsASwappableSlot) {
  at::NoGradGuard no_grad;
  auto m = random_falcon(tiny_config(), 3);
  auto slots = m->linears();
  ASSERT_EQ(slots.size(), 2u * 4 + 1);
  EXPECT_EQ(slots[0].name, "transformer.h.0.self_attention.query_key_value");
  EXPECT_EQ(slots.back().name, "lm_head");
  FalconInputs in;
  in.input_ids = some_ids();
  at::Tensor before = m->forward(in);
  int calls = 0;
  for (auto& s : slots)
    if (s.name.ends_with("dense_4h_to_h")) *s.layer = std::make_unique<CountingLinear>(std::move(*s.layer), &calls);
  at::Tensor after = m->forward(in);
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(at::allclose(before, after));
  // Parameter names are unchanged by the wrapper.
  size_t n = 0;
  for (auto& [name, _] : m->named_parameters()) n += name == "transformer.h.1.mlp.dense_4h_to_h.weight";
  EXPECT_EQ(n, 1u);
}

}  // namespace
}  // namespace autotrain::model

namespace autotrain::model {
namespace {

std::string eval_error(const std::string& name, const std::string& content) {
  TempDir dir;
  std::ofstream(dir.path() / name) << content;
  try {
    read_eval_tokens(dir.path() / name, "text", dir.path());
  } catch (const EvalUsageError& e) {
    return e.what();
  } catch (const ModelError& e) {  // the model folder's fault (here: it has no tokenizer)
    return std::string("ModelError: ") + e.what();
  }
  return "";
}

TEST(EvalData, PreTokenizedRowsInEveryFormat) {
  TempDir dir;
  std::ofstream(dir.path() / "a.jsonl") << "{\"input_ids\": [1, 2, 3]}\n\n{\"input_ids\": [4], \"text\": \"ignored\"}\n";
  std::ofstream(dir.path() / "a.json") << R"([{"input_ids": [5, 6]}, {"input_ids": []}])";
  EXPECT_EQ(read_eval_tokens(dir.path() / "a.jsonl", "text", dir.path()), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(read_eval_tokens(dir.path() / "a.json", "text", dir.path()), (std::vector<int64_t>{5, 6}));
  // A CSV cell holds a list as pandas' to_csv writes it.
  std::ofstream(dir.path() / "a.csv") << "input_ids,attention_mask\n\"[7, 8, 1]\",\"[1, 1, 0]\"\n\"[9]\",\n";
  EXPECT_EQ(read_eval_tokens(dir.path() / "a.csv", "text", dir.path()), (std::vector<int64_t>{7, 8, 9}));
  std::ofstream(dir.path() / "b.csv") << "input_ids\n\"[7, 8\"\n";
  EXPECT_THAT(eval_error("b.csv", "input_ids\n\"[7, 8\"\n"), HasSubstr("b.csv:2: \"input_ids\" is not a list of token ids"));
}

// A Parquet file's text column (the Hub's format): read by the data module's Parquet reader.
TEST(EvalData, ParquetIsReadByItsColumn) {
  TempDir dir;
  const auto file = dir.path() / "d.parquet";
  std::filesystem::copy(std::filesystem::path(AUTOTRAIN_TEST_SOURCE_DIR) / "fuzz/parquet_seeds/columns.parquet", file);
  try {
    read_eval_tokens(file, "body", dir.path());
    ADD_FAILURE() << "a missing column passed";
  } catch (const EvalUsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no column \"body\"; the columns are: id, tags, text. Pass --text-column"));
  }
}

TEST(EvalData, ErrorsNameFileAndLine) {
  EXPECT_THAT(eval_error("d.jsonl", "{\"input_ids\": [1]}\n{oops\n"), HasSubstr("d.jsonl:2: not valid JSON"));
  EXPECT_THAT(eval_error("d.jsonl", "{\"input_ids\": [1, -4]}\n"), HasSubstr("d.jsonl:1: \"input_ids\" must hold non-negative"));
  EXPECT_THAT(eval_error("d.jsonl", "{\"prompt\": \"x\"}\n"),
              HasSubstr("d.jsonl:1: the row has neither an \"input_ids\" list nor a text column \"text\""));
  EXPECT_THAT(eval_error("d.jsonl", "[1, 2]\n"), HasSubstr("d.jsonl:1: expected a JSON object per row"));
  EXPECT_THAT(eval_error("d.csv", "a,b\n1,2\n3,4,5\n"), HasSubstr("d.csv:3: 3 fields, but the header has 2"));
  EXPECT_THAT(eval_error("d.csv", "a,b\n1,\"2\n"), HasSubstr("d.csv:2: unterminated quoted field"));
  EXPECT_THAT(eval_error("d.tsv", "hello"), HasSubstr("unknown format '.tsv'"));
  // A .txt file is one text row per line, and a number cell is text, as `data` reads them: both
  // get as far as the tokenizer (this folder has none). A list is not text.
  EXPECT_THAT(eval_error("d.txt", "hello\nworld\n"), HasSubstr("d.txt:1: text rows need the model's tokenizer"));
  EXPECT_THAT(eval_error("d.jsonl", "{\"text\": 5}\n"), HasSubstr("d.jsonl:1: text rows need the model's tokenizer"));
  EXPECT_THAT(eval_error("d.jsonl", "{\"text\": [\"a\"]}\n"),
              HasSubstr("d.jsonl:1: column \"text\" holds array, not text"));
  EXPECT_THAT(eval_error("d.json", "42"), HasSubstr("expected a JSON array of row objects"));
  // One object is a one-row file (JSON Lines of one line), as the datasets library reads it.
  EXPECT_THAT(eval_error("d.json", "{}"), HasSubstr("d.json:1: the row has neither"));
}

}  // namespace
}  // namespace autotrain::model
