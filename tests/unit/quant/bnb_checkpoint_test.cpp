// 4-bit checkpoints against transformers + bitsandbytes (tests/reference/quant/bnb_model_reference.py
// runs from_pretrained / save_pretrained with BitsAndBytesConfig at test time): a checkpoint
// transformers quantized and saved loads here without re-quantizing and gives its logits;
// `autotrain quantize` writes the same tensors transformers writes for the same weights, and
// transformers' from_pretrained loads our folder into bnb Linear4bit layers and gives our logits.
#include <functional>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "autotrain/quant/bnb_checkpoint.h"
#include "autotrain/quant/linear4bit.h"
#include "autotrain/quant/quantize_command.h"
#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/torch.h"
#include "support/reference_run.h"
#include "support/test_support.h"

namespace autotrain::quant {
namespace {

namespace st = autotrain::safetensors;
using ::testing::HasSubstr;

testing::ReferenceRun& oracle() {
  static testing::ReferenceRun run("quant/bnb_model_reference.py", {"make"});
  return run;
}

class BnbCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!oracle().have_python()) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest (scripts/test.sh)";
    ASSERT_TRUE(oracle().ok()) << "the bitsandbytes reference script failed:\n" << oracle().log();
  }
  static const std::filesystem::path& dir() { return oracle().dir(); }
  static at::Tensor read(const std::filesystem::path& file, const std::string& name) {
    auto f = st::SafetensorsFile::open(file);
    return st::tensor_view(f, f.tensor(name)).clone();
  }
  static at::Tensor logits(model::FalconForCausalLM& m) {
    at::NoGradGuard ng;
    model::FalconInputs in;
    in.input_ids = read(dir() / "expected.safetensors", "input_ids");
    return m.forward(in);
  }
};

TEST_F(BnbCheckpoint, BitsandbytesCheckpointLoadsWithoutRequantizing) {
  ASSERT_TRUE(is_bnb_4bit_checkpoint(dir() / "bnb4"));
  auto m = load_bnb_4bit(dir() / "bnb4");
  int quantized = 0;
  for (auto& slot : m->linears()) quantized += dynamic_cast<Linear4bit*>(slot.layer->get()) != nullptr;
  EXPECT_EQ(quantized, 8);
  at::Tensor theirs = read(dir() / "expected.safetensors", "logits_bnb4");
  // Same dequantized weights, fp32 matmuls: only summation order differs. Stated tolerance 1e-4.
  EXPECT_LE((logits(*m) - theirs).abs().max().item<double>(), 1e-4);
}

TEST_F(BnbCheckpoint, QuantizeWritesWhatBitsandbytesWritesAndItLoadsOurs) {
  testing::TempDir out;
  QuantizeCommandOptions o;
  o.model = (dir() / "base").string();
  o.out = (out.path() / "q4").string();
  o.double_quant = true;
  o.dtype = "fp32";
  auto r = run_quantize_command(o);
  EXPECT_EQ(r.layers, 8);
  EXPECT_LT(r.nf4_bytes * 6, r.dense_bytes);

  // Tensor for tensor, the bytes bitsandbytes produced from the same weights.
  auto ours = st::SafetensorsFile::open(out.path() / "q4" / "model.safetensors");
  auto theirs = st::SafetensorsFile::open(dir() / "bnb4" / "model.safetensors");
  ASSERT_EQ(ours.header().tensors.size(), theirs.header().tensors.size());
  for (const auto& info : theirs.header().tensors) {
    SCOPED_TRACE(info.name);
    at::Tensor a = st::tensor_view(ours, ours.tensor(info.name));
    at::Tensor b = st::tensor_view(theirs, info);
    EXPECT_EQ(a.sizes(), b.sizes());
    // Every tensor, the nested absmax codes included (bitsandbytes' CPU grid lookup, see
    // quantize_blockwise_8bit in src/quant/nf4.cpp), bit for bit.
    EXPECT_TRUE(at::equal(a.flatten().view(at::kByte), b.flatten().view(at::kByte)));
  }

  auto m = load_bnb_4bit(out.path() / "q4");
  at::Tensor our_logits = logits(*m);
  auto c = oracle().run({"check", dir().string(), (out.path() / "q4").string()});
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  at::Tensor bnb_logits = read(dir() / "check_logits.safetensors", "logits");
  EXPECT_LE((our_logits - bnb_logits).abs().max().item<double>(), 1e-4);
}

// A damaged 4-bit checkpoint is refused with the tensor and what it should hold, before any
// kernel could read past a short tensor or divide by a zero blocksize.
TEST_F(BnbCheckpoint, DamagedCheckpointsAreRefusedWithTheirCause) {
  const std::string layer = "transformer.h.0.mlp.dense_4h_to_h";
  auto f = st::SafetensorsFile::open(dir() / "bnb4" / "model.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& info : f.header().tensors) tensors.emplace_back(info.name, st::tensor_view(f, info).clone());
  auto find = [&](std::vector<std::pair<std::string, at::Tensor>>& ts, const std::string& name) -> at::Tensor& {
    for (auto& [n, t] : ts)
      if (n == name) return t;
    throw std::runtime_error("no tensor " + name);
  };
  const std::string state_name = layer + ".weight.quant_state.bitsandbytes__nf4";
  const at::Tensor state = find(tensors, state_name);
  const std::string state_json(static_cast<const char*>(state.data_ptr()), static_cast<size_t>(state.numel()));
  ASSERT_THAT(state_json, HasSubstr("\"blocksize\": 64"));
  auto json_tensor = [](const std::string& text) {
    return at::from_blob(const_cast<char*>(text.data()), {static_cast<int64_t>(text.size())}, at::kByte).clone();
  };
  struct Damage {
    std::function<void(std::vector<std::pair<std::string, at::Tensor>>&)> apply;
    std::string expected;
  };
  std::string zero_blocksize = state_json, no_shape = state_json;
  zero_blocksize.replace(zero_blocksize.find("\"blocksize\": 64"), 15, "\"blocksize\": 0");
  no_shape.replace(no_shape.find("\"shape\""), 7, "\"shap\"");
  const std::vector<Damage> damages = {
      {[&](auto& ts) { find(ts, state_name) = json_tensor(zero_blocksize); }, "has blocksize 0"},
      {[&](auto& ts) { find(ts, state_name) = json_tensor(no_shape); }, "lacks a field"},
      {[&](auto& ts) { auto& t = find(ts, layer + ".weight.absmax"); t = t.narrow(0, 0, t.size(0) - 1).clone(); },
       layer + ".weight.absmax is"},
      {[&](auto& ts) { auto& t = find(ts, layer + ".weight.nested_absmax"); t = t.to(at::kHalf); },
       layer + ".weight.nested_absmax is Half"},
      {[&](auto& ts) { auto& t = find(ts, layer + ".weight"); t = t.narrow(0, 0, t.size(0) - 1).clone(); },
       layer + ".weight is Byte with"},
  };
  for (const auto& damage : damages) {
    SCOPED_TRACE(damage.expected);
    testing::TempDir broken;
    for (const auto& entry : std::filesystem::directory_iterator(dir() / "bnb4"))
      if (entry.path().filename() != "model.safetensors")
        std::filesystem::copy(entry.path(), broken.path() / entry.path().filename());
    auto damaged = tensors;
    damage.apply(damaged);
    st::save_tensors(broken.path() / "model.safetensors", damaged);
    try {
      load_bnb_4bit(broken.path());
      ADD_FAILURE() << "loaded a damaged checkpoint";
    } catch (const model::ModelError& e) {
      EXPECT_THAT(e.what(), HasSubstr(damage.expected));
    }
  }
}

TEST_F(BnbCheckpoint, QuantizeRefusesWhatItCannotDo) {
  testing::TempDir out;
  QuantizeCommandOptions o;
  o.model = (dir() / "bnb4").string();
  o.out = (out.path() / "x").string();
  EXPECT_THROW(run_quantize_command(o), std::invalid_argument);  // already 4-bit
  o.model = (dir() / "base").string();
  o.blocksize = 100;
  EXPECT_THROW(run_quantize_command(o), std::invalid_argument);
  o.blocksize = 64;
  out.write("x/something", "keep me");
  try {
    run_quantize_command(o);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("not empty"));
  }
  EXPECT_EQ(testing::read_file(out.path() / "x" / "something"), "keep me");
}

TEST_F(BnbCheckpoint, CommandLine) {
  auto bin = testing::env_var("AUTOTRAIN_BIN");
  if (!bin) GTEST_SKIP() << "AUTOTRAIN_BIN not set";
  testing::TempDir out;
  auto r = testing::run_command({*bin, "quantize", "--model", (dir() / "base").string(), "--out",
                                 (out.path() / "q").string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"layers\":8"));
  auto again = testing::run_command({*bin, "quantize", "--model", (dir() / "base").string(), "--out",
                                     (out.path() / "q").string()});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("not empty"));
}

}  // namespace
}  // namespace autotrain::quant
