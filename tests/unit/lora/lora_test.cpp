// LoRA against PEFT: an adapter PEFT saved gives PEFT's logits here, an adapter we save gives
// our logits in PEFT (both fp32, <= 1e-5), the trainable-parameter counts agree, fresh adapters
// start as PEFT's (A ~ U(±1/sqrt(in)), B = 0), and bad adapters are refused with reasons.
#include <tuple>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <nlohmann/json.hpp>

#include "autotrain/config/config.h"
#include "autotrain/lora/lora.h"
#include "autotrain/lora/qlora_loading.h"
#include "autotrain/model/eval.h"
#include "autotrain/model/loader.h"
#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/torch.h"
#include "support/input_ids_jsonl.h"
#include "support/reference_run.h"
#include "support/test_support.h"

namespace autotrain::lora {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace st = autotrain::safetensors;

testing::ReferenceRun& oracle() {
  static testing::ReferenceRun run("lora/peft_reference.py", {"make"});
  return run;
}

class LoraPeft : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!oracle().have_python()) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest (scripts/test.sh)";
    ASSERT_TRUE(oracle().ok()) << "the PEFT reference script failed:\n" << oracle().log();
  }
  static const std::filesystem::path& dir() { return oracle().dir(); }
  static at::Tensor expected(const char* name, const char* file = "expected.safetensors") {
    auto f = st::SafetensorsFile::open(dir() / file);
    return st::tensor_view(f, f.tensor(name)).clone();
  }
  static std::unique_ptr<model::FalconForCausalLM> base() { return model::load_falcon(dir() / "base"); }
  // Non-zero lora_B (a fresh adapter's is zero), so that the adapter changes the logits.
  static void randomize_b(const InjectedLora& lora, uint64_t seed) {
    at::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    for (auto* l : lora.layers) l->lora_B.normal_(0.0, 0.05, gen);
  }
  // Saves the adapter in `folder` and has PEFT load it onto the base: peft_logits.safetensors.
  static void save_and_load_in_peft(const InjectedLora& lora, const LoraOptions& o, const std::filesystem::path& folder) {
    save_adapter(lora, o, "tiny-falcon", folder);
    auto r = oracle().run({"check", dir().string(), folder.string()});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  static at::Tensor logits(model::FalconForCausalLM& m) {
    at::NoGradGuard no_grad;
    model::FalconInputs in;
    in.input_ids = expected("input_ids");
    return m.forward(in).to(at::kFloat);
  }
};

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// The settings of peft_reference.py's CASES, as TARGET_MODULES and LORA_* give them to us.
struct Case {
  const char* name;
  LoraOptions options;
};
std::vector<Case> cases() {
  auto make = [](int64_t r, double alpha, double dropout, bool rslora, const char* targets) {
    LoraOptions o;
    o.r = r;
    o.alpha = alpha;
    o.dropout = dropout;
    o.rslora = rslora;
    o.target_modules = targets;
    return o;
  };
  return {{"default", make(4, 8, 0.0, false, "")},
          {"list_rslora", make(8, 16, 0.05, true, "dense, dense_h_to_4h")},
          {"full_name", make(4, 8, 0.0, false, "transformer.h.0.self_attention.query_key_value")},
          {"all_linear", make(4, 8, 0.0, false, "all-linear")},
          {"lm_head", make(4, 8, 0.0, false, "lm_head")}};
}

TEST_F(LoraPeft, PeftAdapterGivesPeftLogits) {
  auto model = base();
  auto loaded = load_adapter(*model, dir() / "adapter");
  EXPECT_EQ(loaded.options.r, 4);
  EXPECT_DOUBLE_EQ(loaded.options.alpha, 8.0);
  EXPECT_EQ(loaded.lora.modules.size(), 8u);  // 2 layers x 4 linears, all-linear without lm_head
  at::Tensor ours = logits(*model);
  at::Tensor theirs = expected("logits");
  ASSERT_EQ(ours.sizes(), theirs.sizes());
  EXPECT_LE(max_abs_diff(ours, theirs), 1e-5);
  // The adapter matters: without it the logits differ clearly.
  auto plain = base();
  EXPECT_GT(max_abs_diff(logits(*plain), theirs), 1e-3);
}

TEST_F(LoraPeft, TrainableParameterCountsMatchPeft) {
  // Every setting of the reference, lm_head on the tied embedding and rsLoRA included: the
  // counts get_nb_trainable_parameters gives and the line print_trainable_parameters prints.
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    auto model = base();
    inject_lora(*model, c.options, 1);
    at::Tensor counts = expected((std::string("counts_") + c.name).c_str());
    EXPECT_EQ(count_parameters(*model, true), counts[0].item<int64_t>());
    EXPECT_EQ(count_parameters(*model, false), counts[1].item<int64_t>());
    EXPECT_EQ(trainable_parameters_line(*model) + "\n",
              testing::read_file(dir() / "cases" / c.name / "trainable_line.txt"));
  }
}

TEST_F(LoraPeft, OurAdapterGivesOurLogitsInPeft) {
  auto model = base();
  LoraOptions o;
  o.r = 4;
  o.alpha = 8;
  o.target_modules = "all-linear";
  auto lora = inject_lora(*model, o, 7);
  randomize_b(lora, 3);
  at::Tensor ours = logits(*model);
  testing::TempDir out;
  ASSERT_NO_FATAL_FAILURE(save_and_load_in_peft(lora, o, out.path() / "adapter"));
  at::Tensor theirs = expected("logits", "peft_logits.safetensors");
  EXPECT_LE(max_abs_diff(ours, theirs), 1e-5);
  // And it round-trips here.
  auto again = base();
  load_adapter(*again, out.path() / "adapter");
  EXPECT_LE(max_abs_diff(logits(*again), ours), 1e-6);
}

TEST_F(LoraPeft, FreshAdapterStartsLikePeft) {
  auto model = base();
  LoraOptions o;
  o.r = 8;
  o.target_modules = "dense_h_to_4h,dense_4h_to_h";
  auto lora = inject_lora(*model, o, 42);
  ASSERT_EQ(lora.modules.size(), 4u);
  for (auto* l : lora.layers) {
    EXPECT_TRUE(at::equal(l->lora_B, at::zeros_like(l->lora_B)));
    const double bound = 1.0 / std::sqrt(static_cast<double>(l->in_features()));
    at::Tensor a = l->lora_A.detach().flatten();
    EXPECT_LE(a.abs().max().item<double>(), bound);
    // U(-b, b): mean 0 (sd b/sqrt(3n)) and variance b^2/3; 5-sigma bands, and the spread fills the range.
    const double n = static_cast<double>(a.numel());
    EXPECT_NEAR(a.mean().item<double>(), 0.0, 5 * bound / std::sqrt(3 * n));
    EXPECT_NEAR(a.var().item<double>(), bound * bound / 3, 5 * bound * bound * std::sqrt(4.0 / 45.0 / n));
    EXPECT_GT(a.abs().max().item<double>(), 0.9 * bound);
    EXPECT_TRUE(l->lora_A.requires_grad());
  }
  // B = 0: the model computes exactly what the base computes.
  auto plain = base();
  EXPECT_TRUE(at::equal(logits(*model), logits(*plain)));
  // Different seeds give different adapters; the same seed the same.
  auto other = base();
  auto lora2 = inject_lora(*other, o, 42);
  auto third = base();
  auto lora3 = inject_lora(*third, o, 43);
  for (size_t i = 0; i < lora.layers.size(); ++i) {
    EXPECT_TRUE(at::equal(lora.layers[i]->lora_A, lora2.layers[i]->lora_A));
    EXPECT_FALSE(at::equal(lora.layers[i]->lora_A, lora3.layers[i]->lora_A));
  }
}

TEST_F(LoraPeft, TargetModulesFollowPeftMatching) {
  auto model = base();
  auto def = resolve_target_modules(*model, "");
  EXPECT_EQ(def, (std::vector<std::string>{"transformer.h.0.self_attention.query_key_value",
                                           "transformer.h.1.self_attention.query_key_value"}));
  auto dense = resolve_target_modules(*model, "dense");  // suffix match: only self_attention.dense
  EXPECT_EQ(dense.size(), 2u);
  for (const auto& d : dense) EXPECT_THAT(d, HasSubstr("self_attention.dense"));
  EXPECT_EQ(resolve_target_modules(*model, "all-linear").size(), 8u);
  // Stripped and compared case-insensitively, as AutoTrain and PEFT do.
  EXPECT_EQ(resolve_target_modules(*model, " all-linear ").size(), 8u);
  EXPECT_EQ(resolve_target_modules(*model, "ALL-LINEAR").size(), 8u);
  EXPECT_EQ(resolve_target_modules(*model, "  "), def);
  EXPECT_EQ(resolve_target_modules(*model, "lm_head"), std::vector<std::string>{"lm_head"});
  try {
    resolve_target_modules(*model, "q_proj,dense");
    FAIL();
  } catch (const config::ConfigError& e) {  // a configuration error: the CLI exits 2
    EXPECT_THAT(e.what(), HasSubstr("'q_proj' matches no linear layer"));
    EXPECT_THAT(e.what(), HasSubstr("dense_4h_to_h"));
    EXPECT_THAT(e.what(), Not(HasSubstr("use all-linear)")));
    ASSERT_EQ(e.problems().size(), 1u);
    EXPECT_EQ(e.problems()[0].key, "TARGET_MODULES");
  }
  // Only separators: nothing would be trained.
  for (const char* spec : {",", " , ,"}) {
    SCOPED_TRACE(spec);
    try {
      resolve_target_modules(*model, spec);
      FAIL();
    } catch (const config::ConfigError& e) {
      EXPECT_THAT(e.what(), HasSubstr("names no module"));
      EXPECT_THAT(e.what(), HasSubstr("dense_h_to_4h, lm_head, query_key_value"));
    }
  }
}

// Through the CLI: a bad TARGET_MODULES is a configuration error (exit 2, before any step), and
// " ALL-linear " trains every body layer.
TEST(LoraCli, TargetModulesThroughTrain) {
  auto bin = testing::env_var("AUTOTRAIN_BIN");
  if (!bin) GTEST_SKIP() << "AUTOTRAIN_BIN not set: run through ctest";
  testing::TempDir tmp;
  const std::string env = std::string(AUTOTRAIN_TEST_SOURCE_DIR) + "/../configs/tiny.env";
  const std::vector<std::string> where = {"-c", env, "--set", "MODEL_NAME=" + (tmp.path() / "m").string(), "--set",
                                          "DATA_PATH=" + (tmp.path() / "d").string(), "--set",
                                          "AUTOTRAIN_PROJECT_NAME=" + (tmp.path() / "p").string()};
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {*bin};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), where.begin(), where.end());
    return testing::run_command(argv);
  };
  auto tiny = run({"tiny"});
  ASSERT_EQ(tiny.exit_code, 0) << tiny.err;
  auto comma = run({"train", "--dry-run", "--set", "TARGET_MODULES=,"});
  EXPECT_EQ(comma.exit_code, 2) << comma.err;
  EXPECT_THAT(comma.err, HasSubstr("names no module"));
  EXPECT_THAT(comma.err, HasSubstr("query_key_value"));
  auto none = run({"train", "--dry-run", "--set", "TARGET_MODULES=q_proj"});
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_THAT(none.err, HasSubstr("'q_proj' matches no linear layer"));
  auto spaced = run({"train", "--dry-run", "--set", "TARGET_MODULES= ALL-linear "});
  EXPECT_EQ(spaced.exit_code, 0) << spaced.err;
  auto plain = run({"train", "--dry-run", "--set", "TARGET_MODULES=all-linear"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  auto trainable_line = [](const std::string& err) {
    auto at = err.find("trainable params: ");
    return at == std::string::npos ? std::string("(none)") : err.substr(at, err.find('\n', at) - at);
  };
  EXPECT_NE(trainable_line(plain.err), "(none)") << plain.err;
  EXPECT_EQ(trainable_line(spaced.err), trainable_line(plain.err)) << "the same layers as all-linear";
}

// An adapter whose config targets layers its weights leave out: applied without them, with a
// warning that names them (PEFT warns of missing adapter keys); complete adapters load quietly.
TEST_F(LoraPeft, PartialAdapterIsAppliedWithAWarning) {
  auto model = base();
  LoraOptions o;
  o.r = 4;
  o.alpha = 8;
  o.target_modules = "transformer.h.1.self_attention.query_key_value";
  auto lora = inject_lora(*model, o, 5);
  testing::TempDir out;
  save_adapter(lora, o, "tiny-falcon", out.path());
  auto cfg = nlohmann::json::parse(testing::read_file(out.path() / "adapter_config.json"));
  ::testing::internal::CaptureStderr();
  load_adapter(*base(), out.path());
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  cfg["target_modules"] = {"query_key_value"};
  out.write("adapter_config.json", cfg.dump(2));
  ::testing::internal::CaptureStderr();
  auto loaded = load_adapter(*base(), out.path());
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(loaded.lora.modules.size(), 1u);
  EXPECT_THAT(err, HasSubstr("targets 1 layer (transformer.h.0.self_attention.query_key_value) that the weights hold no LoRA for"));
}

// PEFT builds the LoRA layers from adapter_config.json's target_modules and loads the weights into
// them: weights for a layer the config does not name are not applied, and a config that names no
// layer of the model is refused. PEFT loads the same folders at test time; our logits are its.
TEST_F(LoraPeft, TheConfigsTargetsDecideAsInPeft) {
  auto made = base();
  LoraOptions o;
  o.r = 4;
  o.alpha = 8;
  o.target_modules = "query_key_value,dense";
  auto lora = inject_lora(*made, o, 5);
  randomize_b(lora, 9);
  testing::TempDir out;
  save_adapter(lora, o, "tiny-falcon", out.path());
  auto cfg = nlohmann::json::parse(testing::read_file(out.path() / "adapter_config.json"));
  cfg["target_modules"] = {"dense"};  // the query_key_value weights are now for layers it does not name
  out.write("adapter_config.json", cfg.dump(2));
  auto peft = oracle().run({"check", dir().string(), out.path().string()});
  ASSERT_EQ(peft.exit_code, 0) << peft.out << peft.err;
  const at::Tensor peft_logits = expected("logits", "peft_logits.safetensors");
  auto model = base();
  ::testing::internal::CaptureStderr();
  auto loaded = load_adapter(*model, out.path());
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(loaded.lora.modules.size(), 2u) << "the two self_attention.dense layers";
  EXPECT_THAT(err, HasSubstr("the weights hold a LoRA for 2 layers (transformer.h.0.self_attention.query_key_value, ... "
                             "transformer.h.1.self_attention.query_key_value) that adapter_config.json's target_modules "
                             "does not name; not applied"));
  EXPECT_LE(max_abs_diff(logits(*model), peft_logits), 1e-5);
  EXPECT_GT(max_abs_diff(logits(*base()), peft_logits), 1e-3) << "the dense LoRA must change the logits";

  cfg["target_modules"] = {"q_proj", "v_proj"};  // a Llama adapter's names
  out.write("adapter_config.json", cfg.dump(2));
  auto refused = oracle().run({"check", dir().string(), out.path().string()});
  EXPECT_NE(refused.exit_code, 0) << "PEFT loaded an adapter whose target_modules name no layer";
  EXPECT_THAT(refused.out + refused.err, HasSubstr("not found in the base model"));
  try {
    load_adapter(*base(), out.path());
    ADD_FAILURE() << "an adapter whose target_modules name no layer must be refused";
  } catch (const AdapterError& e) {
    EXPECT_THAT(e.what(), HasSubstr("target_modules [\"q_proj\",\"v_proj\"] names no layer of this Falcon model"));
  }
}

TEST_F(LoraPeft, RefusesAdaptersThatDoNotFit) {
  testing::TempDir tmp;
  auto copy_adapter = [&](const std::string& name) {
    auto d = tmp.path() / name;
    std::filesystem::create_directories(d);
    for (auto f : {"adapter_config.json", "adapter_model.safetensors"})
      std::filesystem::copy_file(dir() / "adapter" / f, d / f);
    return d;
  };
  {  // a pickle adapter
    auto d = tmp.path() / "bin";
    std::filesystem::create_directories(d);
    std::filesystem::copy_file(dir() / "adapter" / "adapter_config.json", d / "adapter_config.json");
    tmp.write("bin/adapter_model.bin", "not read");
    auto model = base();
    try {
      load_adapter(*model, d);
      FAIL();
    } catch (const AdapterError& e) {
      EXPECT_THAT(e.what(), HasSubstr("adapter_model.bin"));
      EXPECT_THAT(e.what(), HasSubstr("safe_serialization=True"));
    }
  }
  {  // another architecture's module names
    auto d = tmp.path() / "llama";
    std::filesystem::create_directories(d);
    std::filesystem::copy_file(dir() / "adapter" / "adapter_config.json", d / "adapter_config.json");
    st::save_tensors(d / "adapter_model.safetensors",
                     {{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", at::zeros({4, 64})},
                      {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", at::zeros({64, 4})}});
    auto model = base();
    try {
      load_adapter(*model, d);
      FAIL();
    } catch (const AdapterError& e) {
      EXPECT_THAT(e.what(), HasSubstr("model.layers.0.self_attn.q_proj"));
      EXPECT_THAT(e.what(), HasSubstr("another base model"));
    }
  }
  {  // targets PEFT matches in ways not implemented here: refused, the model untouched
    for (const auto& [key, value, said] : std::vector<std::tuple<std::string, nlohmann::json, std::string>>{
             {"target_modules", ".*query_key_value", "is a regular expression"},
             {"exclude_modules", nlohmann::json::array({"dense"}), "exclude_modules = [\"dense\"] limits where PEFT puts LoRA"},
             {"layers_to_transform", nlohmann::json::array({0}), "layers_to_transform = [0] limits where PEFT puts LoRA"}}) {
      auto d = copy_adapter("match-" + key);
      auto cfg = nlohmann::json::parse(testing::read_file(d / "adapter_config.json"));
      cfg[key] = value;
      tmp.write("match-" + key + "/adapter_config.json", cfg.dump(2));
      auto model = base();
      try {
        load_adapter(*model, d);
        ADD_FAILURE() << key;
      } catch (const AdapterError& e) {
        EXPECT_THAT(e.what(), HasSubstr(said)) << key;
      }
      EXPECT_EQ(count_parameters(*model, true), 0) << key;
    }
  }
  {  // integer LoRA weights (quantized values): not cast to float
    auto d = tmp.path() / "int8";
    std::filesystem::create_directories(d);
    std::filesystem::copy_file(dir() / "adapter" / "adapter_config.json", d / "adapter_config.json");
    st::save_tensors(d / "adapter_model.safetensors",
                     {{"base_model.model.transformer.h.0.self_attention.query_key_value.lora_A.weight",
                       at::ones({4, 64}, at::kChar)},
                      {"base_model.model.transformer.h.0.self_attention.query_key_value.lora_B.weight",
                       at::ones({96, 4}, at::kChar)}});
    auto model = base();
    try {
      load_adapter(*model, d);
      FAIL();
    } catch (const AdapterError& e) {
      EXPECT_THAT(e.what(), HasSubstr("query_key_value.lora_A.weight is stored as I8; LoRA weights are floats"));
    }
  }
  {  // r in the config does not match the tensors
    auto d = copy_adapter("rank");
    std::string cfg = testing::read_file(d / "adapter_config.json");
    cfg.replace(cfg.find("\"r\": 4"), 6, "\"r\": 8");
    tmp.write("rank/adapter_config.json", cfg);
    auto model = base();
    try {
      load_adapter(*model, d);
      FAIL();
    } catch (const AdapterError& e) {
      EXPECT_THAT(e.what(), HasSubstr("does not fit this model"));
    }
    // A refused adapter leaves the model untouched.
    EXPECT_EQ(count_parameters(*model, true), 0);
  }
  {  // DoRA
    auto d = copy_adapter("dora");
    std::string cfg = testing::read_file(d / "adapter_config.json");
    cfg.replace(cfg.find("\"use_dora\": false"), 17, "\"use_dora\": true");
    tmp.write("dora/adapter_config.json", cfg);
    auto model = base();
    EXPECT_THROW(load_adapter(*model, d), AdapterError);
  }
  // A PEFT feature this loader does not implement changes the forward pass: refused, not applied
  // as plain LoRA (aLoRA adapts only after its invocation tokens; PiSSA rewrote the base).
  for (const auto& [name, key, value] : std::vector<std::tuple<std::string, std::string, nlohmann::json>>{
           {"alora", "alora_invocation_tokens", {5, 6}},
           {"pissa", "init_lora_weights", "pissa"},
           {"lora_ga", "init_lora_weights", "lora_ga"}}) {
    auto d = copy_adapter(name);
    auto cfg = nlohmann::json::parse(testing::read_file(d / "adapter_config.json"));
    cfg[key] = value;
    tmp.write(name + "/adapter_config.json", cfg.dump(2));
    auto model = base();
    try {
      load_adapter(*model, d);
      FAIL() << name;
    } catch (const AdapterError& e) {
      EXPECT_THAT(e.what(), HasSubstr(name == "alora" ? "'alora_invocation_tokens'" : "\"" + name + "\"")) << e.what();
    }
  }
  // What PEFT itself cannot load (KeyError, TypeError) or applies beyond LoRA is refused, not
  // read with a guess: no peft_type, a null lora_alpha, modules_to_save, Megatron layers.
  for (const auto& [name, key, value, said] : std::vector<std::tuple<std::string, std::string, nlohmann::json, std::string>>{
           {"no_type", "peft_type", nullptr, "no \"peft_type\""},
           {"alpha_null", "lora_alpha", nullptr, "\"lora_alpha\" is null; it must be a number"},
           {"save_head", "modules_to_save", {"lm_head"}, "modules_to_save = [\"lm_head\"] is not supported"},
           {"megatron", "megatron_config", {{"tensor_model_parallel_size", 2}}, "megatron_config = "}}) {
    auto d = copy_adapter(name);
    auto cfg = nlohmann::json::parse(testing::read_file(d / "adapter_config.json"));
    if (name == "no_type")
      cfg.erase(key);
    else
      cfg[key] = value;
    tmp.write(name + "/adapter_config.json", cfg.dump(2));
    auto model = base();
    try {
      load_adapter(*model, d);
      ADD_FAILURE() << name;
    } catch (const AdapterError& e) {
      EXPECT_THAT(e.what(), HasSubstr(said)) << e.what();
    }
  }
}

// fan_in_fan_out only concerns Conv1D layers (GPT-2): on nn.Linear PEFT warns, sets it false and
// loads the adapter as plain LoRA; so do we.
TEST_F(LoraPeft, FanInFanOutOnLinearLayersIsIgnoredAsPeftIgnoresIt) {
  testing::TempDir tmp;
  for (auto f : {"adapter_config.json", "adapter_model.safetensors"})
    std::filesystem::copy_file(dir() / "lm_head_random" / f, tmp.path() / f);
  auto cfg = nlohmann::json::parse(testing::read_file(tmp.path() / "adapter_config.json"));
  cfg["fan_in_fan_out"] = true;
  tmp.write("adapter_config.json", cfg.dump(2));
  auto adapted = base();
  load_adapter(*adapted, tmp.path());
  EXPECT_LE(max_abs_diff(logits(*adapted), expected("logits_lm_head")), 1e-5);
}

// PEFT saves the tied head's base weight beside a LoRA on lm_head; that adapter loads, and the
// head's LoRA is applied.
TEST_F(LoraPeft, PeftAdapterOnTheTiedHeadLoads) {
  auto model = base();
  auto loaded = load_adapter(*model, dir() / "cases" / "lm_head");
  ASSERT_EQ(loaded.lora.modules.size(), 1u);
  EXPECT_EQ(loaded.lora.modules.front(), "lm_head");
  // With a non-zero B: our logits are PEFT's, and differ from the base's (the LoRA is applied).
  auto plain = base();
  const at::Tensor base_logits = logits(*plain);
  auto adapted = base();
  load_adapter(*adapted, dir() / "lm_head_random");
  const at::Tensor ours = logits(*adapted);
  EXPECT_LE(max_abs_diff(ours, expected("logits_lm_head")), 1e-5);
  EXPECT_GT(max_abs_diff(ours, base_logits), 1e-3) << "the head's LoRA changed nothing";
}

// adapter_config.json: the whole object PEFT writes for the same setting, every key and value,
// but peft_version (PEFT records its own build there; see save_adapter) and the order of
// target_modules (PEFT writes a set in arbitrary order). Keys sorted, indent 2.
TEST_F(LoraPeft, SavedConfigIsWhatPeftWrites) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    auto model = base();
    auto lora = inject_lora(*model, c.options, 1);
    testing::TempDir out;
    save_adapter(lora, c.options, "org/tiny-falcon", out.path());
    const std::string text = testing::read_file(out.path() / "adapter_config.json");
    auto ours = nlohmann::json::parse(text);
    auto theirs = nlohmann::json::parse(testing::read_file(dir() / "cases" / c.name / "adapter_config.json"));
    ASSERT_TRUE(theirs.contains("peft_version"));
    EXPECT_FALSE(ours.contains("peft_version"));
    theirs.erase("peft_version");
    for (auto* j : {&ours, &theirs}) {
      auto t = (*j)["target_modules"].get<std::vector<std::string>>();
      std::sort(t.begin(), t.end());
      (*j)["target_modules"] = t;
    }
    EXPECT_EQ(ours, theirs) << "ours:\n" << ours.dump(2) << "\nPEFT's:\n" << theirs.dump(2);
    const auto as_written = nlohmann::ordered_json::parse(text);
    EXPECT_EQ(text, as_written.dump(2) + "\n");  // indent 2
    std::vector<std::string> keys;
    for (const auto& [k, v] : as_written.items()) keys.push_back(k);
    EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  }
  auto model = base();
  LoraOptions o;
  auto lora = inject_lora(*model, o, 1);
  testing::TempDir out;
  save_adapter(lora, o, "org/base", out.path());
  auto f = st::SafetensorsFile::open(out.path() / "adapter_model.safetensors");
  EXPECT_EQ(f.header().metadata.at("format"), "pt");
  EXPECT_NO_THROW(f.tensor("base_model.model.transformer.h.1.self_attention.query_key_value.lora_B.weight"));
}

// A single layer named in full: PEFT must attach LoRA to that layer only (the saved
// target_modules is the full name, not "query_key_value", which would match every layer).
TEST_F(LoraPeft, FullNameTargetRoundTripsThroughPeft) {
  auto model = base();
  LoraOptions o;
  o.r = 4;
  o.alpha = 8;
  o.target_modules = "transformer.h.0.self_attention.query_key_value";
  auto lora = inject_lora(*model, o, 5);
  ASSERT_EQ(lora.modules, std::vector<std::string>{o.target_modules});
  randomize_b(lora, 9);
  at::Tensor ours = logits(*model);
  testing::TempDir out;
  ASSERT_NO_FATAL_FAILURE(save_and_load_in_peft(lora, o, out.path() / "adapter"));
  at::Tensor counts = expected("counts", "peft_logits.safetensors");
  EXPECT_EQ(counts[0].item<int64_t>(), count_parameters(*model, true));
  EXPECT_EQ(counts[1].item<int64_t>(), count_parameters(*model, false));
  EXPECT_LE(max_abs_diff(ours, expected("logits", "peft_logits.safetensors")), 1e-5);
  // Loaded here and saved again, it still names that one layer.
  auto again = base();
  auto loaded = load_adapter(*again, out.path() / "adapter");
  testing::TempDir resaved;
  save_adapter(loaded.lora, loaded.options, "tiny-falcon", resaved.path());
  auto cfg = nlohmann::json::parse(testing::read_file(resaved.path() / "adapter_config.json"));
  EXPECT_EQ(cfg["target_modules"], nlohmann::json::array({o.target_modules}));
}

TEST_F(LoraPeft, MergeGivesTheSameLogitsAndUnmergeRestoresTheBase) {
  auto model = base();
  auto loaded = load_adapter(*model, dir() / "adapter");
  at::Tensor with_adapter = logits(*model);
  std::vector<at::Tensor> before;
  for (auto* l : loaded.lora.layers) before.push_back(dynamic_cast<model::DenseLinear&>(l->base()).weight.clone());
  for (auto* l : loaded.lora.layers) l->merge();
  EXPECT_LE(max_abs_diff(logits(*model), with_adapter), 1e-5);
  EXPECT_LE(max_abs_diff(logits(*model), expected("logits")), 1e-5);  // PEFT's, unmerged
  for (auto* l : loaded.lora.layers) l->unmerge();
  for (size_t i = 0; i < before.size(); ++i)
    EXPECT_LE(max_abs_diff(dynamic_cast<model::DenseLinear&>(loaded.lora.layers[i]->base()).weight, before[i]), 1e-6);
}

TEST_F(LoraPeft, EvalWithAdapterGivesPeftsLoss) {
  // The two reference rows as pre-tokenized data, one block each.
  at::Tensor ids = expected("input_ids");
  const std::string jsonl = testing::input_ids_jsonl(ids);
  testing::TempDir tmp;
  model::EvalOptions o;
  o.model = (dir() / "base").string();
  o.adapter = (dir() / "adapter").string();
  o.data = tmp.write("rows.jsonl", jsonl);
  o.block_size = ids.size(1);
  o.device = "cpu";
  use_qlora_loading(o);
  auto r = model::run_eval(o);
  // PEFT's logits, shifted: mean cross-entropy over the predicted tokens.
  at::Tensor logits = expected("logits");
  const int64_t v = logits.size(-1);
  at::Tensor loss = at::cross_entropy_loss(logits.slice(1, 0, -1).reshape({-1, v}), ids.slice(1, 1).reshape({-1}));
  EXPECT_EQ(r.tokens, ids.size(0) * (ids.size(1) - 1));
  EXPECT_NEAR(r.loss, loss.item<double>(), 1e-5);
  // A 4-bit base with the same adapter: close, not equal.
  o.load_in_4bit = true;
  use_qlora_loading(o);
  auto q = model::run_eval(o);
  EXPECT_NE(q.loss, r.loss);
  EXPECT_NEAR(q.loss, r.loss, 0.1 * r.loss);
}

}  // namespace
}  // namespace autotrain::lora
