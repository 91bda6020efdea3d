// 4-bit checkpoints against transformers + bitsandbytes (tests/reference/quant/bnb_model_reference.py
// runs from_pretrained / save_pretrained with BitsAndBytesConfig at test time): a checkpoint
// transformers quantized and saved loads here without re-quantizing and gives its logits;
// `autotrain quantize` writes the same tensors transformers writes for the same weights, and
// transformers' from_pretrained loads our folder into bnb Linear4bit layers and gives our logits.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <fstream>
#include <functional>
#include <utility>
#include <vector>

#include <gmock/gmock.h>

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include "autotrain/quant/bnb_checkpoint.h"
#include "autotrain/quant/linear4bit.h"
#include "autotrain/model/loader.h"
#include "autotrain/quant/quantize_command.h"
#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/torch.h"
#include "support/input_ids_jsonl.h"
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
  static nlohmann::json json_of(const std::filesystem::path& file) { return nlohmann::json::parse(testing::read_file(file)); }
  // Tensor for tensor, the bytes of `theirs` (every tensor, the nested absmax codes and the
  // quant-state JSON included).
  static void expect_same_tensors(const std::filesystem::path& ours_file, const std::filesystem::path& theirs_file) {
    auto ours = st::SafetensorsFile::open(ours_file);
    auto theirs = st::SafetensorsFile::open(theirs_file);
    ASSERT_EQ(ours.header().tensors.size(), theirs.header().tensors.size());
    EXPECT_EQ(ours.header().metadata, theirs.header().metadata);
    for (const auto& info : theirs.header().tensors) {
      SCOPED_TRACE(info.name);
      const auto& mine = ours.tensor(info.name);
      EXPECT_EQ(mine.dtype, info.dtype) << "same bytes in another dtype are another tensor";
      EXPECT_EQ(mine.shape, info.shape);
      at::Tensor a = st::tensor_view(ours, mine);
      at::Tensor b = st::tensor_view(theirs, info);
      EXPECT_TRUE(at::equal(a.flatten().view(at::kByte), b.flatten().view(at::kByte)));
    }
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
  EXPECT_FALSE(is_bnb_4bit_checkpoint(dir() / "bnb8"));
  EXPECT_FALSE(is_bnb_4bit_checkpoint(dir() / "base"));
  {  // a null or odd quantization_config is no 4-bit checkpoint (json's value() threw on null)
    testing::TempDir odd;
    for (const char* q : {"null", "\"yes\"", R"({"quant_method": "bitsandbytes", "load_in_4bit": "true"})"}) {
      odd.write("config.json", std::string(R"({"model_type": "falcon", "quantization_config": )") + q + "}");
      EXPECT_NO_THROW(EXPECT_FALSE(is_bnb_4bit_checkpoint(odd.path())) << q) << q;
    }
  }
  auto m = load_bnb_4bit(dir() / "bnb4");
  int quantized = 0;
  for (auto& slot : m->linears()) quantized += dynamic_cast<Linear4bit*>(slot.layer->get()) != nullptr;
  EXPECT_EQ(quantized, 8);
  at::Tensor theirs = read(dir() / "expected.safetensors", "logits_bnb4");
  // Same dequantized weights, fp32 matmuls: only summation order differs. Stated tolerance 1e-4.
  EXPECT_LE((logits(*m) - theirs).abs().max().item<double>(), 1e-4);
}

// llm_int8_skip_modules leaves layers plain in transformers' checkpoints (their weight stored
// as is, no quant state): those load as plain layers, the rest as NF4, giving transformers' logits.
TEST_F(BnbCheckpoint, SkippedModulesLoadAsPlainLayers) {
  auto m = load_bnb_4bit(dir() / "bnb4_skip");
  std::vector<std::string> plain;
  for (auto& slot : m->linears())
    if (!dynamic_cast<Linear4bit*>(slot.layer->get()) && slot.name != "lm_head") plain.push_back(slot.name);
  EXPECT_EQ(plain, (std::vector<std::string>{"transformer.h.0.self_attention.dense", "transformer.h.1.self_attention.dense",
                                             "transformer.h.1.mlp.dense_h_to_4h", "transformer.h.1.mlp.dense_4h_to_h"}));
  EXPECT_LE((logits(*m) - read(dir() / "expected.safetensors", "logits_bnb4_skip")).abs().max().item<double>(), 1e-4);

  // A config that names a layer the file holds packed is refused, saying so.
  testing::TempDir odd;
  for (const auto& e : std::filesystem::directory_iterator(dir() / "bnb4"))
    std::filesystem::copy_file(e.path(), odd.path() / e.path().filename());
  auto cfg = json_of(odd.path() / "config.json");
  cfg["quantization_config"]["llm_int8_skip_modules"] = {"transformer.h.0.mlp.dense_h_to_4h"};
  odd.write("config.json", cfg.dump());
  try {
    load_bnb_4bit(odd.path());
    ADD_FAILURE() << "a packed weight loaded as a plain one";
  } catch (const model::ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("transformer.h.0.mlp.dense_h_to_4h.weight is"));
    EXPECT_THAT(e.what(), HasSubstr("it is stored 4-bit, but quantization_config.llm_int8_skip_modules names it"));
  }
}

// `eval --load-in-4bit --double-quant` scores the base as bitsandbytes' double-quantized model
// does (an adapter trained with USE_DOUBLE_QUANT=True saw that base), and differently without it.
TEST_F(BnbCheckpoint, EvalDoubleQuantScoresAsBitsandbytes) {
  auto bin = testing::env_var("AUTOTRAIN_BIN");
  if (!bin) GTEST_SKIP() << "AUTOTRAIN_BIN not set (run through ctest)";
  at::Tensor ids = read(dir() / "expected.safetensors", "input_ids");
  const std::string jsonl = testing::input_ids_jsonl(ids);
  testing::TempDir tmp;
  const auto data = tmp.write("rows.jsonl", jsonl);
  at::Tensor theirs = read(dir() / "expected.safetensors", "logits_bnb4");
  const int64_t v = theirs.size(-1);
  const double want =
      at::cross_entropy_loss(theirs.slice(1, 0, -1).reshape({-1, v}), ids.slice(1, 1).reshape({-1})).item<double>();
  auto eval = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {*bin, "eval", "--model", (dir() / "base").string(), "--data", data.string(),
                                     "--block-size", std::to_string(ids.size(1)), "--json", "--device", "cpu",
                                     "--load-in-4bit"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = testing::run_command(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out)["loss"].get<double>();
  };
  EXPECT_NEAR(eval({"--double-quant"}), want, 1e-5 * want);
  EXPECT_GT(std::abs(eval({}) - want), 1e-6) << "without --double-quant the base is not the same";
  // A folder already 4-bit is used as stored: asking for double quantization it lacks is said.
  const auto single = tmp.path() / "q";
  auto quantized = testing::run_command({*bin, "quantize", "--model", (dir() / "base").string(), "--out", single.string()});
  ASSERT_EQ(quantized.exit_code, 0) << quantized.err;
  auto stored = testing::run_command({*bin, "eval", "--model", single.string(), "--data", data.string(), "--block-size",
                                      std::to_string(ids.size(1)), "--device", "cpu", "--load-in-4bit", "--double-quant"});
  EXPECT_EQ(stored.exit_code, 0) << stored.err;
  EXPECT_THAT(stored.err, HasSubstr("is already 4-bit, without double quantization: --double-quant is ignored"));
  auto stored_dq = testing::run_command({*bin, "eval", "--model", (dir() / "bnb4").string(), "--data", data.string(),
                                         "--block-size", std::to_string(ids.size(1)), "--device", "cpu",
                                         "--load-in-4bit", "--double-quant"});
  EXPECT_EQ(stored_dq.exit_code, 0) << stored_dq.err;
  EXPECT_THAT(stored_dq.err, ::testing::Not(HasSubstr("is ignored")));
  auto alone = testing::run_command({*bin, "eval", "--model", (dir() / "base").string(), "--data", data.string(),
                                     "--double-quant"});
  EXPECT_EQ(alone.exit_code, 2);
  EXPECT_THAT(alone.err, HasSubstr("needs --load-in-4bit"));
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

  // Tensor for tensor, the bytes bitsandbytes produced from the same weights (the nested absmax
  // codes: bitsandbytes' CPU grid lookup, see quantize_blockwise_8bit in src/quant/nf4.cpp).
  expect_same_tensors(out.path() / "q4" / "model.safetensors", dir() / "bnb4" / "model.safetensors");
  // And the config.json transformers writes: the source's, with its quantization_config.
  auto ours = json_of(out.path() / "q4" / "config.json");
  auto theirs = json_of(dir() / "bnb4" / "config.json");
  EXPECT_EQ(ours["quantization_config"], theirs["quantization_config"]);
  EXPECT_EQ(ours, theirs) << "ours:\n" << ours.dump(2) << "\ntransformers':\n" << theirs.dump(2);

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

// bitsandbytes writes the double-quantization offset with Python's float repr: "nested_offset":
// 2.0 for an integral mean, which the byte comparison of the quant-state JSON checks.
TEST_F(BnbCheckpoint, IntegralOffsetIsWrittenAsBitsandbytesWritesIt) {
  testing::TempDir out;
  QuantizeCommandOptions o;
  o.model = (dir() / "base_int").string();
  o.out = (out.path() / "q4").string();
  o.double_quant = true;
  o.dtype = "fp32";
  run_quantize_command(o);
  expect_same_tensors(out.path() / "q4" / "model.safetensors", dir() / "bnb4_int" / "model.safetensors");
}

// json.dumps would write Infinity, which is not JSON: refused, naming the layer.
TEST_F(BnbCheckpoint, NonFiniteOffsetIsRefused) {
  auto m = model::load_falcon(dir() / "base");
  const std::string layer = "transformer.h.1.mlp.dense_4h_to_h";
  for (auto& slot : m->linears()) {
    if (slot.name == "lm_head") continue;
    auto q = quantize_nf4(dynamic_cast<model::DenseLinear&>(**slot.layer).weight, 64, true);
    if (slot.name == layer) q.nested->offset = INFINITY;
    *slot.layer = std::make_unique<Linear4bit>(std::move(q), at::Tensor());
  }
  testing::TempDir out;
  try {
    save_bnb_4bit(*m, dir() / "base", out.path() / "q4", "float32");
    FAIL() << "wrote an infinite offset";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr(layer));
    EXPECT_THAT(e.what(), HasSubstr("offset"));
    EXPECT_THAT(e.what(), HasSubstr("inf"));
  }
  EXPECT_FALSE(std::filesystem::exists(out.path() / "q4"));
}

// The source config says "dtype": "float32" (transformers 5 writes "dtype"); quantized with
// --dtype bf16, AutoConfig must report bfloat16.
TEST_F(BnbCheckpoint, DtypeKeysSayTheWrittenDtype) {
  ASSERT_EQ(json_of(dir() / "base" / "config.json").value("dtype", ""), "float32");
  testing::TempDir out;
  QuantizeCommandOptions o;
  o.model = (dir() / "base").string();
  o.out = (out.path() / "q4").string();
  o.dtype = "bf16";
  run_quantize_command(o);
  auto cfg = json_of(out.path() / "q4" / "config.json");
  EXPECT_EQ(cfg["quantization_config"]["bnb_4bit_compute_dtype"], "bfloat16");
  auto r = oracle().run({"config", dir().string(), (out.path() / "q4").string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(json_of(dir() / "config_report.json")["dtype"], "bfloat16");
}

// Legacy RefinedWebModel checkpoints carry their model code: configuration_RW.py and
// modelling_RW.py, named by config.json's auto_map; the output needs them for trust_remote_code.
TEST_F(BnbCheckpoint, RemoteCodeIsCopied) {
  testing::TempDir tmp;
  const auto rw = tmp.path() / "rw";
  std::filesystem::create_directories(rw);
  std::filesystem::copy_file(dir() / "base" / "model.safetensors", rw / "model.safetensors");
  auto cfg = json_of(dir() / "base" / "config.json");
  cfg["model_type"] = "RefinedWebModel";
  cfg["architectures"] = {"RWForCausalLM"};
  cfg["n_head"] = cfg["num_attention_heads"];
  cfg["n_layer"] = cfg["num_hidden_layers"];
  cfg.erase("num_attention_heads");
  cfg.erase("num_hidden_layers");
  cfg["auto_map"] = {{"AutoConfig", "configuration_RW.RWConfig"}, {"AutoModelForCausalLM", "modelling_RW.RWForCausalLM"}};
  tmp.write("rw/config.json", cfg.dump(2));
  tmp.write("rw/configuration_RW.py", "# RWConfig\n");
  tmp.write("rw/modelling_RW.py", "from .configuration_RW import RWConfig\n");
  QuantizeCommandOptions o;
  o.model = rw.string();
  o.out = (tmp.path() / "q4").string();
  run_quantize_command(o);
  EXPECT_EQ(testing::read_file(tmp.path() / "q4" / "configuration_RW.py"), "# RWConfig\n");
  EXPECT_EQ(testing::read_file(tmp.path() / "q4" / "modelling_RW.py"), "from .configuration_RW import RWConfig\n");
  EXPECT_EQ(json_of(tmp.path() / "q4" / "config.json")["auto_map"], cfg["auto_map"]);
  EXPECT_NO_THROW(load_bnb_4bit(tmp.path() / "q4"));
  // auto_map naming a module the folder lacks: the output could not be loaded either.
  std::filesystem::remove(rw / "modelling_RW.py");
  o.out = (tmp.path() / "q4b").string();
  try {
    run_quantize_command(o);
    FAIL();
  } catch (const model::ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("modelling_RW.py is not in the folder"));
  }
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "q4b"));
}

// "newdir/" and "./x/." name the folder itself (the temporary folder used to land inside it).
TEST_F(BnbCheckpoint, OutWithATrailingSlashOrDot) {
  testing::TempDir tmp;
  QuantizeCommandOptions o;
  o.model = (dir() / "base").string();
  for (const std::string out : {"newdir/", "x/.", "./y//"}) {
    SCOPED_TRACE(out);
    o.out = (tmp.path() / out).string();
    EXPECT_NO_THROW(run_quantize_command(o));
  }
  for (const char* name : {"newdir", "x", "y"}) EXPECT_TRUE(std::filesystem::exists(tmp.path() / name / "model.safetensors"));
  std::vector<std::string> left;  // no temporary folder left behind
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"newdir", "x", "y"}));
}

TEST_F(BnbCheckpoint, QuantizeRefusesWhatItCannotDo) {
  testing::TempDir out;
  QuantizeCommandOptions o;
  o.model = (dir() / "bnb4").string();
  o.out = (out.path() / "x").string();
  EXPECT_THROW(run_quantize_command(o), std::invalid_argument);  // already 4-bit
  o.model = (dir() / "bnb8").string();  // 8-bit, as transformers + bitsandbytes write it
  try {
    run_quantize_command(o);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("already quantized to 8 bits"));
    EXPECT_THAT(e.what(), HasSubstr("load_in_8bit"));
    EXPECT_THAT(e.what(), HasSubstr("cannot be re-quantized"));
  }
  // Nor is the 8-bit checkpoint read as 16-bit weights where a model is loaded (eval, train).
  try {
    model::load_falcon(dir() / "bnb8");
    FAIL();
  } catch (const model::ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("quantization_config says these weights are quantized (bitsandbytes 8-bit)"));
  }
  // --dtype auto takes config.json's dtype only when it is one of the three float types.
  {
    const auto odd = out.path() / "odd-dtype";
    std::filesystem::copy(dir() / "base", odd);
    auto cfg = nlohmann::json::parse(testing::read_file(odd / "config.json"));
    cfg["dtype"] = "float7";
    cfg["torch_dtype"] = "float7";
    out.write("odd-dtype/config.json", cfg.dump());
    o.model = odd.string();
    try {
      run_quantize_command(o);
      FAIL();
    } catch (const std::invalid_argument& e) {
      EXPECT_THAT(e.what(), HasSubstr("gives the dtype \"float7\", which is not float32, float16 or bfloat16; pass "
                                      "--dtype"));
    }
    o.dtype = "fp16";
    o.out = (out.path() / "odd-dtype-nf4").string();
    EXPECT_NO_THROW(run_quantize_command(o));
    o.dtype = "auto";
    // No dtype in config.json at all: the stored weights' (float32 here), not a silent bf16.
    cfg.erase("dtype");
    cfg.erase("torch_dtype");
    out.write("odd-dtype/config.json", cfg.dump());
    o.out = (out.path() / "no-dtype-nf4").string();
    ASSERT_NO_THROW(run_quantize_command(o));
    EXPECT_EQ(json_of(out.path() / "no-dtype-nf4" / "config.json")["dtype"], "float32");
  }
  o.out = (out.path() / "x").string();
  o.model = (out.path() / "no-such-model").string();
  EXPECT_THROW(run_quantize_command(o), std::invalid_argument);  // a command-line mistake, as in eval
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
  // A file, even an empty one, is not replaced.
  for (const std::string content : {"", "data"}) {
    const std::string file = out.write("file.bin", content).string();
    o.out = file;
    try {
      run_quantize_command(o);
      FAIL();
    } catch (const std::invalid_argument& e) {
      EXPECT_THAT(e.what(), HasSubstr("is a file, not a folder"));
    }
    EXPECT_TRUE(std::filesystem::is_regular_file(file));
    EXPECT_EQ(testing::read_file(file), content);
  }
  // --out is checked before the model is read: a folder with a config and no weights fails on
  // --out, not on its missing weights.
  out.write("noweights/config.json", testing::read_file(dir() / "base" / "config.json"));
  o.model = (out.path() / "noweights").string();
  o.out = (out.path() / "x").string();
  try {
    run_quantize_command(o);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("not empty"));
  }
  // A new --out that cannot be made (a file on its path; a place that takes no folders, even for
  // root) is refused before the model is read too, naming --out rather than a temporary folder.
  for (const auto& [bad, why] : std::vector<std::pair<std::string, std::string>>{
           {(out.path() / "file.bin" / "sub" / "q").string(), "file.bin is not a folder"},
           {"/proc/autotrain-out", "cannot create folders in /proc"}}) {
    o.out = bad;
    try {
      run_quantize_command(o);
      FAIL() << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_THAT(e.what(), HasSubstr("--out " + bad));
      EXPECT_THAT(e.what(), HasSubstr(why));
      EXPECT_THAT(e.what(), ::testing::Not(HasSubstr(".tmp")));
    }
  }
  // The probe folder that tried where --out would go is gone.
  for (const auto& entry : std::filesystem::directory_iterator(out.path()))
    EXPECT_EQ(entry.path().filename().string().find(".autotrain-out-probe"), std::string::npos) << entry.path();
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
  // Usage errors exit 2: a --model that names nothing, an --out that is a file.
  auto missing = testing::run_command({*bin, "quantize", "--model", (out.path() / "nothing").string(), "--out",
                                       (out.path() / "q2").string()});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("not found"));
  const std::string file = out.write("empty-file", "").string();
  auto to_file = testing::run_command({*bin, "quantize", "--model", (dir() / "base").string(), "--out", file});
  EXPECT_EQ(to_file.exit_code, 2) << to_file.err;
  EXPECT_THAT(to_file.err, HasSubstr("is a file"));
  EXPECT_TRUE(std::filesystem::is_regular_file(file));
  auto slash = testing::run_command({*bin, "quantize", "--model", (dir() / "base").string(), "--out",
                                     (out.path() / "q3").string() + "/"});
  EXPECT_EQ(slash.exit_code, 0) << slash.err;
  // A link to an empty folder: the checkpoint lands in the folder, and the link stays a link.
  std::filesystem::create_directory(out.path() / "target");
  std::filesystem::create_directory_symlink(out.path() / "target", out.path() / "link");
  auto linked = testing::run_command({*bin, "quantize", "--model", (dir() / "base").string(), "--out",
                                      (out.path() / "link").string()});
  EXPECT_EQ(linked.exit_code, 0) << linked.err;
  EXPECT_TRUE(std::filesystem::is_symlink(out.path() / "link"));
  EXPECT_TRUE(std::filesystem::exists(out.path() / "target" / "config.json"));

  // A SIGTERM while the checkpoint is being written (the test hook raises one once
  // model.safetensors is in the temporary folder): the command dies of it, and leaves neither
  // the output nor the temporary folder beside it (gigabytes for a 7B model).
  std::vector<std::string> env{"AUTOTRAIN_TEST_SIGNAL_WHILE_WRITING=1"};
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  testing::TempDir parent;
  auto killed = testing::run_command({*bin, "quantize", "--model", (dir() / "base").string(), "--out",
                                      (parent.path() / "q").string()}, env);
  EXPECT_EQ(killed.exit_code, 128 + SIGTERM) << killed.err;
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(parent.path())) left.push_back(e.path().filename());
  EXPECT_TRUE(left.empty()) << "left behind: " << ::testing::PrintToString(left);
}

}  // namespace
}  // namespace autotrain::quant
