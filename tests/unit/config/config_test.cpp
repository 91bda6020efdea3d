// Typed config: precedence, validation (all problems in one run), aliases, secrets, JSON.
#include "autotrain/config/config.h"

#include <map>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace autotrain::config {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

const std::string kTutorial = std::string(AUTOTRAIN_TEST_SOURCE_DIR) + "/../configs/falcon.env";

Config resolve_text(const std::string& text, Environment env = {}, std::vector<std::string> sets = {}) {
  static int counter = 0;
  static TempDir dir;
  auto path = dir.write("c" + std::to_string(counter++) + ".env", text);
  return Config::resolve({path.string(), std::move(env), std::move(sets)});
}

std::vector<ConfigProblem> problems_of(const std::string& text, Environment env = {}, std::vector<std::string> sets = {}) {
  try {
    resolve_text(text, std::move(env), std::move(sets));
  } catch (const ConfigError& e) {
    return e.problems();
  }
  return {};
}

TEST(Config, TutorialFileWithProjectId) {
  auto cfg = Config::resolve({kTutorial, {{"PROJECT_ID", "admin"}}, {}});
  EXPECT_EQ(cfg.get_string("AUTOTRAIN_PROJECT_NAME"), "falcon-7b/finetune-admin");
  auto j = cfg.to_json();
  EXPECT_EQ(j["values"]["LEARNING_RATE"], "2E-4");
  EXPECT_DOUBLE_EQ(j["effective"]["LEARNING_RATE"].get<double>(), 0.0002);
  EXPECT_EQ(j["sources"]["LEARNING_RATE"], kTutorial + ":7");
  EXPECT_EQ(j["effective"]["MIXED_PRECISION"], "fp16");
  EXPECT_EQ(j["effective"]["TEXT_COLUMN"], "text");  // TEXT_COLUMM="" means the default
  EXPECT_EQ(j["values"]["TEXT_COLUMM"], "");
  EXPECT_EQ(j["effective"]["TRAINER"], "sft");
  EXPECT_EQ(j["effective"]["GRADIENT_ACCUMULATION"], 4);
  EXPECT_EQ(j["effective"]["USE_INT4"], true);
  EXPECT_EQ(j["effective"]["HF_TOKEN"], nullptr);  // the placeholder counts as no token
}

TEST(Config, TutorialFileWithoutProjectId) {
  auto cfg = Config::resolve({kTutorial, {}, {}});
  EXPECT_EQ(cfg.get_string("AUTOTRAIN_PROJECT_NAME"), "falcon-7b/finetune-example");
}

TEST(Config, JsonHasExactlyTheFiveFields) {
  auto j = Config::resolve({kTutorial, {}, {}}).to_json();
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"values", "effective", "sources", "environment", "warnings"}));
  EXPECT_FALSE(j["values"].contains("SEED"));  // defaults are not "set"
  EXPECT_EQ(j["effective"]["SEED"], 42);
  EXPECT_EQ(j["sources"]["SEED"], "default");
}

TEST(Config, PrecedenceDefaultEnvFileCli) {
  auto cfg = resolve_text("LORA_R=8\nSEED=${SEED:=7}\n", {{"LORA_R", "4"}, {"SEED", "99"}, {"NUM_EPOCHS", "3"}});
  EXPECT_EQ(cfg.get_int("LORA_R"), 8);      // a plain assignment beats the environment
  EXPECT_EQ(cfg.get_int("SEED"), 99);       // ${KEY:=v} keeps a non-empty environment value
  EXPECT_EQ(cfg.get_int("NUM_EPOCHS"), 3);  // environment beats the default
  EXPECT_EQ(cfg.entry("NUM_EPOCHS").source, "env");
  EXPECT_EQ(cfg.get_int("BATCH_SIZE"), 2);  // default
  auto cli = resolve_text("LORA_R=8\n", {}, {"LORA_R=32"});
  EXPECT_EQ(cli.get_int("LORA_R"), 32);
  EXPECT_EQ(cli.entry("LORA_R").source, "cli");
}

TEST(Config, CliOverrideIsVisibleToTheFile) {
  auto cfg = Config::resolve({kTutorial, {}, {"PROJECT_ID=bob"}});
  EXPECT_EQ(cfg.get_string("AUTOTRAIN_PROJECT_NAME"), "falcon-7b/finetune-bob");
}

TEST(Config, EachInvalidValueNamesKeyValueSourceAndWhatIsAllowed) {
  struct Case {
    std::string line;
    std::string key;
    std::string allowed_part;
  };
  for (const auto& c : std::vector<Case>{{"LEARNING_RATE=fast", "LEARNING_RATE", "a number greater than 0"},
                                         {"LORA_R=0", "LORA_R", "an integer from 1"},
                                         {"BATCH_SIZE=-1", "BATCH_SIZE", "an integer from 1"},
                                         {"WARMUP_RATIO=2", "WARMUP_RATIO", "at most 1"},
                                         {"USE_FP16=maybe", "USE_FP16", "True or False"},
                                         {"TRAINER=ppo", "TRAINER", "one of default, sft"},
                                         {"NUM_EPOCHS=2.5", "NUM_EPOCHS", "an integer"},
                                         {"LEARNING_RATE=nan", "LEARNING_RATE", "a number"},
                                         {"BLOCK_SIZE=0", "BLOCK_SIZE", "or -1: the tokenizer's model_max_length"},
                                         {"MAX_STEPS=0", "MAX_STEPS", "or -1: NUM_EPOCHS decides"},
                                         {"LOGGING_STEPS=0", "LOGGING_STEPS", "or -1: AutoTrain's rule"}}) {
    auto problems = problems_of("# header\n" + c.line + "\n");
    ASSERT_EQ(problems.size(), 1u) << c.line;
    EXPECT_EQ(problems[0].key, c.key);
    EXPECT_THAT(problems[0].message, HasSubstr(c.line)) << problems[0].message;
    EXPECT_THAT(problems[0].message, HasSubstr(".env:2")) << problems[0].message;
    EXPECT_THAT(problems[0].message, HasSubstr(c.allowed_part)) << problems[0].message;
  }
}

TEST(Config, ConflictingPrecision) {
  auto problems = problems_of("USE_FP16=True\nMIXED_PRECISION=bf16\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].message, HasSubstr("conflicts with USE_FP16=True"));
  EXPECT_EQ(resolve_text("USE_FP16=False\nMIXED_PRECISION=bf16\n").get_string("MIXED_PRECISION"), "bf16");
  EXPECT_EQ(resolve_text("MIXED_PRECISION=bf16\n").get_string("MIXED_PRECISION"), "bf16");
  EXPECT_EQ(resolve_text("USE_FP16=true\n").get_string("MIXED_PRECISION"), "fp16");
  // Set in the same place (both --set), they still conflict.
  EXPECT_EQ(problems_of("", {}, {"USE_FP16=True", "MIXED_PRECISION=no"}).size(), 1u);
  // From the environment against the file: a conflict too (neither is the command line).
  EXPECT_EQ(problems_of("USE_FP16=True\n", {{"MIXED_PRECISION", "bf16"}}).size(), 1u);
}

// `--set MIXED_PRECISION=bf16` on the tutorial's file (USE_FP16=True) means bf16: the command line
// wins over the other key from the file, says so, and the two keys then agree.
TEST(Config, PrecisionOnTheCommandLineWins) {
  auto bf16 = Config::resolve({kTutorial, {}, {"MIXED_PRECISION=bf16"}});
  EXPECT_EQ(bf16.get_string("MIXED_PRECISION"), "bf16");
  EXPECT_FALSE(bf16.get_bool("USE_FP16"));
  ASSERT_FALSE(bf16.warnings().empty());
  EXPECT_THAT(bf16.warnings().back(), HasSubstr("MIXED_PRECISION=bf16 (--set) overrides USE_FP16=True (")) << bf16.warnings().back();
  // USE_FP16=False only says "not fp16": no conflict with bf16.
  EXPECT_EQ(resolve_text("MIXED_PRECISION=bf16\n", {}, {"USE_FP16=False"}).get_string("MIXED_PRECISION"), "bf16");
  EXPECT_EQ(resolve_text("MIXED_PRECISION=fp16\n", {}, {"USE_FP16=False"}).get_string("MIXED_PRECISION"), "no");
  auto on = resolve_text("MIXED_PRECISION=bf16\n", {}, {"USE_FP16=True"});
  EXPECT_EQ(on.get_string("MIXED_PRECISION"), "fp16");
  EXPECT_TRUE(on.get_bool("USE_FP16"));
}

TEST(Config, AllProblemsReportedAtOnce) {
  auto problems = problems_of("LEARNING_RATE=fast\nLORA_R=0\nUSE_FP16=maybe\n");
  ASSERT_EQ(problems.size(), 3u);
  std::set<std::string> keys;
  for (const auto& p : problems) keys.insert(p.key);
  EXPECT_EQ(keys, (std::set<std::string>{"LEARNING_RATE", "LORA_R", "USE_FP16"}));
  std::string all;
  for (const auto& p : problems) all += p.message + "\n";
  EXPECT_THAT(all, HasSubstr(".env:1)"));
  EXPECT_THAT(all, HasSubstr(".env:2)"));
  EXPECT_THAT(all, HasSubstr(".env:3)"));
}

// What `data` or `train` would refuse is refused when the config is read, all of it at once, so
// `setup` and `config` never call a config valid that a run then rejects one problem at a time.
TEST(Config, RunRulesAreReportedWithTheValueErrors) {
  auto problems = problems_of(
      "USE_PEFT=False\nUSE_INT4=True\nDEVICE=bogus\nVALID_SPLIT=test\nVALID_FRACTION=0.2\nPUSH_TO_HUB=True\n"
      "MERGE_ADAPTER=True\nINSTRUCTION_TEMPLATE='### Human:'\nTARGET_MODULES=', ,'\nLORA_R=0\n");
  std::map<std::string, std::string> by_key;
  for (const auto& p : problems) by_key[p.key] = p.message;
  EXPECT_EQ(by_key.size(), 8u);
  EXPECT_THAT(by_key["USE_INT4"], HasSubstr("USE_INT4=True (")) << "names where it was set";
  EXPECT_THAT(by_key["USE_INT4"], HasSubstr("set USE_PEFT=True"));
  EXPECT_THAT(by_key["DEVICE"], HasSubstr("DEVICE=bogus"));
  EXPECT_THAT(by_key["DEVICE"], HasSubstr("auto, cpu, cuda or cuda:N"));
  EXPECT_THAT(by_key["VALID_FRACTION"], HasSubstr("set only one"));
  EXPECT_THAT(by_key["REPO_ID"], HasSubstr("PUSH_TO_HUB=True ("));
  EXPECT_THAT(by_key["REPO_ID"], HasSubstr("needs REPO_ID=USER/NAME"));
  EXPECT_THAT(by_key["MERGE_ADAPTER"], HasSubstr("no adapter to merge"));
  EXPECT_THAT(by_key["MERGE_ADAPTER"], HasSubstr("USE_PEFT=False ("));
  EXPECT_THAT(by_key["INSTRUCTION_TEMPLATE"], HasSubstr("also needs RESPONSE_TEMPLATE"));
  EXPECT_THAT(by_key["TARGET_MODULES"], HasSubstr("names no module"));
  EXPECT_THAT(by_key["LORA_R"], HasSubstr("LORA_R=0"));
  EXPECT_THAT(problems_of("TRAIN_ON_COMPLETIONS_ONLY=True\n").at(0).message, HasSubstr("needs RESPONSE_TEMPLATE"));
}

// A value that is not UTF-8 (a file saved as Latin-1) would make the JSON files a run writes
// (training_params.json, checkpoints) fail at the end: refused when the config is read.
TEST(Config, ValuesMustBeUtf8) {
  auto problems = problems_of("RESPONSE_TEMPLATE='### R\xE9ponse:'\nTEXT_COLUMM=\"t\xFFx\"\nLORA_R=8\n");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].key, "TEXT_COLUMM");
  EXPECT_THAT(problems[0].message, HasSubstr("not valid UTF-8 (byte 0xFF at offset 1)"));
  EXPECT_EQ(problems[1].key, "RESPONSE_TEMPLATE");
  EXPECT_THAT(problems[1].message, HasSubstr("(byte 0xE9 at offset 5)"));
  EXPECT_NO_THROW(resolve_text("RESPONSE_TEMPLATE='### R\xC3\xA9ponse:'\n"));
  for (const char* bad : {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82"})
    EXPECT_EQ(problems_of(std::string("TEXT_COLUMN=a") + bad + "\n").size(), 1u) << "overlong, surrogate, too big, cut";
}

TEST(Config, DeviceSpellings) {
  for (const char* ok : {"auto", "cpu", "cuda", "cuda:0", "cuda:12", ""})
    EXPECT_NO_THROW(resolve_text(std::string("DEVICE=") + ok + "\n")) << ok;
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda0", "CPU", "cuda:0:1", "cuda:99999"})
    EXPECT_EQ(problems_of(std::string("DEVICE=") + bad + "\n").size(), 1u) << bad;
}

// RESPONSE_TEMPLATE alone turns completions-only masking on (trl's collator with a template);
// an explicit TRAIN_ON_COMPLETIONS_ONLY=False wins, and the unused templates are pointed out.
TEST(Config, CompletionsOnlyFollowsTheTemplateUnlessSetExplicitly) {
  EXPECT_FALSE(resolve_text("\n").get_bool("TRAIN_ON_COMPLETIONS_ONLY"));
  EXPECT_TRUE(resolve_text("RESPONSE_TEMPLATE='### Assistant:'\n").get_bool("TRAIN_ON_COMPLETIONS_ONLY"));
  EXPECT_TRUE(resolve_text("RESPONSE_TEMPLATE='### Assistant:'\nTRAIN_ON_COMPLETIONS_ONLY=\n")
                  .get_bool("TRAIN_ON_COMPLETIONS_ONLY"))
      << "empty means the default";
  auto off = resolve_text("RESPONSE_TEMPLATE='### Assistant:'\nTRAIN_ON_COMPLETIONS_ONLY=False\n");
  EXPECT_FALSE(off.get_bool("TRAIN_ON_COMPLETIONS_ONLY"));
  EXPECT_EQ(off.to_json()["effective"]["TRAIN_ON_COMPLETIONS_ONLY"], false);
  std::string warnings;
  for (const auto& w : off.warnings()) warnings += w + "\n";
  EXPECT_THAT(warnings, HasSubstr("RESPONSE_TEMPLATE/INSTRUCTION_TEMPLATE are not used"));
  EXPECT_TRUE(resolve_text("RESPONSE_TEMPLATE=A:\n").to_json()["effective"]["TRAIN_ON_COMPLETIONS_ONLY"].get<bool>());
}

// Validating on the training split is allowed, and said.
TEST(Config, ValidatingOnTheTrainSplitIsPointedOut) {
  auto same = resolve_text("VALID_SPLIT=train\n");
  ASSERT_EQ(same.warnings().size(), 1u);
  EXPECT_THAT(same.warnings()[0], HasSubstr("VALID_SPLIT=train ("));
  EXPECT_THAT(same.warnings()[0], HasSubstr(".env:1) is the TRAIN_SPLIT"));
  EXPECT_TRUE(resolve_text("VALID_SPLIT=test\n").warnings().empty());
}

// DATA_FILE must not be a file `train` writes into the project folder (the model card would
// replace the data).
TEST(Config, DataFileIsNotAProjectOutput) {
  for (const char* name : {"README.md", "metrics.jsonl", "adapter_config.json", "checkpoint-5/train.csv"}) {
    try {
      resolve_text(fmt::format("AUTOTRAIN_PROJECT_NAME=runs/p\nDATA_FILE=runs/p/{}\n", name));
      ADD_FAILURE() << name << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_THAT(e.what(), HasSubstr("is a file `train` writes in the project folder runs/p")) << name;
    }
  }
  EXPECT_THROW(resolve_text("AUTOTRAIN_PROJECT_NAME=runs/p\nDATA_FILE=runs/p/model-00001-of-00002.safetensors\n"),
               ConfigError);
  EXPECT_NO_THROW(resolve_text("AUTOTRAIN_PROJECT_NAME=runs/p\nDATA_FILE=runs/p/train.csv\n"));
  EXPECT_NO_THROW(resolve_text("AUTOTRAIN_PROJECT_NAME=runs/p\nDATA_FILE=runs/p/model-answers.csv\n"));
  EXPECT_NO_THROW(resolve_text("AUTOTRAIN_PROJECT_NAME=runs/p\nDATA_FILE=runs/p/checkpoint-notes.csv\n"));
  EXPECT_NO_THROW(resolve_text("AUTOTRAIN_PROJECT_NAME=runs/p\nDATA_FILE=runs/README.md\n"));
}

// An evaluation asked for without a validation set would silently evaluate nothing.
TEST(Config, EvalStrategyWithoutValidationDataIsPointedOut) {
  auto none = resolve_text("EVAL_STRATEGY=steps\n");
  ASSERT_EQ(none.warnings().size(), 1u);
  EXPECT_THAT(none.warnings()[0], HasSubstr("EVAL_STRATEGY=steps evaluates nothing without a validation set"));
  EXPECT_TRUE(resolve_text("EVAL_STRATEGY=steps\nSAVE_STRATEGY=steps\nVALID_SPLIT=test\n").warnings().empty());
  EXPECT_TRUE(resolve_text("EVAL_STRATEGY=epoch\nVALID_FRACTION=0.1\n").warnings().empty());
  EXPECT_TRUE(resolve_text("EVAL_STRATEGY=no\n").warnings().empty());
  EXPECT_TRUE(resolve_text("EVAL_STRATEGY=\n").warnings().empty());  // empty: the default
  // EVAL_STEPS / SAVE_STEPS without their strategy at steps do nothing: said.
  auto steps = resolve_text("VALID_SPLIT=test\nEVAL_STEPS=5\nSAVE_STEPS=7\n");
  ASSERT_EQ(steps.warnings().size(), 2u);
  EXPECT_THAT(steps.warnings()[0], HasSubstr("EVAL_STEPS=5 is used only with EVAL_STRATEGY=steps (it is epoch)"));
  EXPECT_THAT(steps.warnings()[1], HasSubstr("SAVE_STEPS=7 is used only with SAVE_STRATEGY=steps"));
  EXPECT_TRUE(resolve_text("VALID_SPLIT=test\nEVAL_STRATEGY=steps\nEVAL_STEPS=5\nSAVE_STRATEGY=steps\nSAVE_STEPS=5\n").warnings().empty());
  EXPECT_TRUE(resolve_text("LORA_R=8\n").warnings().empty());  // the default (epoch) says nothing
}

// The project folder may be neither the model's folder nor the data's (local folders; `data`
// also checks what hub ids resolve to): `config` and `setup` refuse what `data` and `train` do.
TEST(Config, ProjectFolderIsNeitherTheModelNorTheDataFolder) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "model");
  std::filesystem::create_directories(dir.path() / "data");
  const std::string model = (dir.path() / "model").string(), data = (dir.path() / "data").string();
  auto problem_of = [&](const std::string& project) {
    try {
      resolve_text("MODEL_NAME=" + model + "\nDATA_PATH=" + data + "\nAUTOTRAIN_PROJECT_NAME=" + project + "\n");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_THAT(problem_of(model + "/"), HasSubstr("is the MODEL_NAME folder"));
  EXPECT_THAT(problem_of(data + "/./"), HasSubstr("is the DATA_PATH folder"));
  EXPECT_EQ(problem_of((dir.path() / "out").string()), "");
  EXPECT_EQ(problem_of(data + "/out"), "");  // a project inside the data folder is skipped as data
}

// The token's shape is checked as `setup --token` checks it, so `config` never calls valid what
// `setup` refuses: outer blanks dropped, inner ones an error that does not show the token.
TEST(Config, TokenShapeIsCheckedAsSetupChecksIt) {
  EXPECT_EQ(resolve_text("HF_TOKEN=\" hf_abcdefghij \"\n").secret("HF_TOKEN"), "hf_abcdefghij");
  EXPECT_FALSE(resolve_text("HF_TOKEN=\"  \"\n").secret("HF_TOKEN"));
  try {
    resolve_text("HF_TOKEN=\"hf_Secret Abcdefgh\"\n");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("has blanks or control characters inside"));
    EXPECT_EQ(std::string(e.what()).find("Abcdefgh"), std::string::npos) << e.what();
  }
}

// A token expanded into another key is masked there too, in everything to_json feeds (config,
// training_params.json, the model card); one not shaped like hf_... as well.
TEST(Config, ATokenExpandedIntoAnotherKeyIsMasked) {
  for (const std::string token : {"hf_SeCrEt0123456789abcd", "plainsecretvalue99"}) {
    auto cfg = resolve_text("HF_TOKEN=" + token + "\nREPO_ID=user/$HF_TOKEN\nPROJECT_ID=${HF_TOKEN}x\n");
    const std::string dumped = cfg.to_json().dump();
    EXPECT_EQ(dumped.find(token), std::string::npos) << dumped;
    EXPECT_EQ(cfg.to_json()["effective"]["REPO_ID"], "user/***");
    EXPECT_EQ(cfg.get_string("REPO_ID"), "user/" + token) << "the value itself is unchanged for the program";
  }
}

// A token pasted into another key is masked in everything to_json feeds, as in messages.
TEST(Config, ATokenPastedIntoAnotherKeyIsMasked) {
  const std::string token = "hf_RepoSECRETabcdefghijklmnopqrstuvwx";  // 34 after hf_, as real ones
  auto cfg = resolve_text("REPO_ID=" + token + "\nDATA_PATH=/data/hf_datasets/alpaca\n");
  const std::string dumped = cfg.to_json().dump();
  EXPECT_EQ(dumped.find("RepoSECRET"), std::string::npos) << dumped;
  EXPECT_EQ(cfg.to_json()["effective"]["REPO_ID"], "hf_" + std::string(34, '*'));
  // A path with hf_ in a name is no token: saved as it is (it is part of the run's identity).
  EXPECT_EQ(cfg.to_json()["effective"]["DATA_PATH"], "/data/hf_datasets/alpaca");
}

TEST(Config, BooleansAndEmptyValues) {
  for (auto t : {"True", "true", "TRUE", "1"}) EXPECT_TRUE(resolve_text(std::string("USE_PEFT=") + t + "\n").get_bool("USE_PEFT"));
  for (auto f : {"False", "false", "0"}) EXPECT_FALSE(resolve_text(std::string("USE_PEFT=") + f + "\n").get_bool("USE_PEFT"));
  auto cfg = resolve_text("LORA_R=\nGRADIENT_CHECKPOINTING=\"\"\n");
  EXPECT_EQ(cfg.get_int("LORA_R"), 16);
  EXPECT_TRUE(cfg.get_bool("GRADIENT_CHECKPOINTING"));
  EXPECT_TRUE(cfg.entry("LORA_R").is_set);
}

TEST(Config, UnknownKeysWarnWithSuggestion) {
  auto cfg = resolve_text("LEARNIG_RATE=1e-4\nMY_HELPER=x\n");
  ASSERT_EQ(cfg.warnings().size(), 2u);
  EXPECT_THAT(cfg.warnings()[0], HasSubstr("did you mean LEARNING_RATE?"));
  EXPECT_THAT(cfg.warnings()[0], HasSubstr(".env:1"));
  EXPECT_THAT(cfg.warnings()[1], HasSubstr("unknown key MY_HELPER"));
  // A helper variable another assignment uses is no misspelt key; one that only reads itself is.
  auto helper = resolve_text("PNAME=x\nAUTOTRAIN_PROJECT_NAME=out/$PNAME\nLEARNIG_RATE=${LEARNIG_RATE:=1e-4}\n");
  ASSERT_EQ(helper.warnings().size(), 1u);
  EXPECT_THAT(helper.warnings()[0], HasSubstr("unknown key LEARNIG_RATE"));
  EXPECT_EQ(helper.get_string("AUTOTRAIN_PROJECT_NAME"), "out/x");
  // With an error elsewhere, the misspelt key is still said: fixing the error must not lead to a
  // run that silently ignores it.
  try {
    resolve_text("LEARNIG_RATE=1e-4\nLORA_R=x\n");
    ADD_FAILURE() << "LORA_R=x accepted";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.warnings().size(), 1u);
    EXPECT_THAT(e.warnings()[0], HasSubstr("did you mean LEARNING_RATE?"));
    EXPECT_THAT(e.what(), HasSubstr("LORA_R=x"));
  }
}

// The tutorial sourced the file under `set -a`: its variables reached the environment (HF_HOME
// decides where the model is found). Those that choose where files are and which GPUs are seen
// are exported; nothing that makes a program load code (parsing a config never runs anything),
// and a misspelt key still gets its suggestion.
TEST(Config, TheFilesEnvironmentVariablesAreExported) {
  auto cfg = resolve_text(
      "HF_HOME=/data/hf\nCUDA_VISIBLE_DEVICES=1\nLORA_R=8\nMY_HELPER=$HF_HOME/x\nLEARNIG_RATE=1\n"
      "AUTOTRAIN_CUDA_BACKEND=/tmp/evil.so\nLD_PRELOAD=/tmp/evil.so\nHF_TOKN=hf_XXX\nOMP_NUM_THREADS=4\n"
      "HF_TOKEN_PATH=/tmp/shared/token\n",
      {{"HF_HOME", "/from/env"}}, {"LORA_R=4"});
  std::map<std::string, std::string> exported(cfg.exports().begin(), cfg.exports().end());
  EXPECT_EQ(exported, (std::map<std::string, std::string>{{"CUDA_VISIBLE_DEVICES", "1"}, {"HF_HOME", "/data/hf"}}));
  std::string all;
  for (const auto& w : cfg.warnings()) all += w + "\n";
  EXPECT_THAT(all, HasSubstr("unknown key MY_HELPER; ignored"));
  EXPECT_THAT(all, HasSubstr("unknown key LEARNIG_RATE; ignored (did you mean LEARNING_RATE?)"));
  EXPECT_THAT(all, HasSubstr("unknown key HF_TOKN; ignored (did you mean HF_TOKEN?)"));
  EXPECT_THAT(all, HasSubstr("AUTOTRAIN_CUDA_BACKEND is not exported from a config file"));
  EXPECT_THAT(all, HasSubstr("LD_PRELOAD is not exported from a config file"));
  EXPECT_THAT(all, HasSubstr("HF_TOKEN_PATH is not exported from a config file"));
  EXPECT_THAT(all, HasSubstr("OMP_NUM_THREADS is not exported from a config file (only HF_HOME, "));
  EXPECT_THAT(all, ::testing::Not(HasSubstr(".env:1:")));  // HF_HOME
  EXPECT_THAT(all, ::testing::Not(HasSubstr(".env:2:")));  // CUDA_VISIBLE_DEVICES
  // --set wins over the file, as for keys; what the environment alone holds is not exported.
  auto cli = resolve_text("HF_HOME=/a\n", {}, {"HF_HOME=/b", "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"});
  std::map<std::string, std::string> from_cli(cli.exports().begin(), cli.exports().end());
  EXPECT_EQ(from_cli, (std::map<std::string, std::string>{{"HF_HOME", "/b"},
                                                          {"PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True"}}));
  EXPECT_TRUE(cli.warnings().empty()) << cli.warnings().front();
  EXPECT_EQ(cli.to_json()["environment"], (nlohmann::json{{"HF_HOME", "/b"}, {"PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True"}}));
  EXPECT_TRUE(resolve_text("LORA_R=8\n", {{"HF_HOME", "/from/env"}}).exports().empty());
}

TEST(Config, TextColummAlias) {
  auto cfg = resolve_text("TEXT_COLUMM=content\n");
  EXPECT_EQ(cfg.get_string("TEXT_COLUMN"), "content");
  ASSERT_EQ(cfg.warnings().size(), 1u);
  EXPECT_THAT(cfg.warnings()[0], HasSubstr("TEXT_COLUMM is read as TEXT_COLUMN"));
  auto both = resolve_text("TEXT_COLUMM=old\nTEXT_COLUMN=new\n");
  EXPECT_EQ(both.get_string("TEXT_COLUMN"), "new");
}

// The alias is a spelling of the key, so the layers' precedence holds across spellings:
// default < environment < file < --set, whichever spelling each layer used.
TEST(Config, TextColummAliasOnAHigherLayerWins) {
  auto cli = resolve_text("TEXT_COLUMN=file\n", {}, {"TEXT_COLUMM=cli"});
  EXPECT_EQ(cli.get_string("TEXT_COLUMN"), "cli");
  EXPECT_EQ(cli.entry("TEXT_COLUMN").source, "cli");
  auto j = cli.to_json();
  EXPECT_EQ(j["values"]["TEXT_COLUMM"], "cli");
  EXPECT_EQ(j["values"]["TEXT_COLUMN"], "file");  // as the shell saw it
  EXPECT_EQ(j["effective"]["TEXT_COLUMN"], "cli");
  EXPECT_THAT(cli.warnings().back(), HasSubstr("overrides TEXT_COLUMN"));
  auto file_over_env = resolve_text("TEXT_COLUMM=file\n", {{"TEXT_COLUMN", "env"}});
  EXPECT_EQ(file_over_env.get_string("TEXT_COLUMN"), "file");
  auto cli_over_alias = resolve_text("TEXT_COLUMM=file\n", {}, {"TEXT_COLUMN=cli"});
  EXPECT_EQ(cli_over_alias.get_string("TEXT_COLUMN"), "cli");
  EXPECT_THAT(cli_over_alias.warnings().back(), HasSubstr("TEXT_COLUMM (the tutorial's spelling of TEXT_COLUMN) is ignored"));
  auto env_under_file = resolve_text("TEXT_COLUMN=file\n", {{"TEXT_COLUMM", "env"}});
  EXPECT_EQ(env_under_file.get_string("TEXT_COLUMN"), "file");
  // The tutorial's falcon.env has TEXT_COLUMM="": empty means the default and overrides nothing.
  auto empty_alias = resolve_text("TEXT_COLUMM=\"\"\n", {{"TEXT_COLUMN", "prompt"}});
  EXPECT_EQ(empty_alias.get_string("TEXT_COLUMN"), "prompt");
}

// File warnings carry no severity word of their own: the logger adds "warning: " once.
TEST(Config, FileWarningsHaveNoDoubledSeverity) {
  auto cfg = resolve_text("\xEF\xBB\xBF" "A=1\n");
  ASSERT_EQ(cfg.warnings().size(), 2u);  // the BOM, and A is no known key
  EXPECT_THAT(cfg.warnings()[0], HasSubstr(".env:1:1: file starts with a UTF-8 byte-order mark"));
  EXPECT_THAT(cfg.warnings()[0], ::testing::Not(HasSubstr("warning")));
}

// Errors quote values; a token never appears in them.
TEST(Config, ErrorsNeverShowAToken) {
  const std::string token = "hf_SECRETabcdefghijklmnop";
  try {
    resolve_text("LORA_R=" + token + "\nHF_TOKEN=" + token + " x\n", {}, {"BAD KEY=" + token});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find("SECRETabc"), std::string::npos) << e.what();
  }
  try {
    resolve_text("LORA_R=" + token + "\n", {}, {"BAD KEY=" + token});
    FAIL();
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.problems().size(), 2u) << e.what();
    for (const auto& p : e.problems()) EXPECT_EQ(p.message.find("SECRETabc"), std::string::npos) << p.message;
    EXPECT_THAT(e.problems()[1].message, HasSubstr("LORA_R=hf_***"));
  }
  // A token not shaped like hf_..., expanded into a key whose check fails: the message quotes
  // that key's value, so the token's text is masked there as it is in to_json.
  const std::string plain = "plainsecretvalue99";
  try {
    resolve_text("HF_TOKEN=" + plain + "\nLORA_R=${HF_TOKEN}\nREPO_ID=\"x $HF_TOKEN\"\nXTRA=$HF_TOKEN\n");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find(plain), std::string::npos) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("LORA_R=*** ("));
  }
}

TEST(Config, FolderAsConfigFileIsAnError) {
  TempDir dir;
  try {
    Config::resolve({dir.path().string(), {}, {}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("is a folder"));
  }
}

TEST(Config, SecretsNeverInJson) {
  const std::string token = "hf_abcdefghijklmnopqrstuvwxyz0123";
  auto cfg = resolve_text("HF_TOKEN=" + token + "\n");
  EXPECT_EQ(cfg.secret("HF_TOKEN"), token);
  std::string dumped = cfg.to_json().dump();
  EXPECT_EQ(dumped.find(token), std::string::npos);
  EXPECT_EQ(cfg.to_json()["values"]["HF_TOKEN"], "***");
  EXPECT_EQ(cfg.to_json()["effective"]["HF_TOKEN"], "***");
  auto placeholder = resolve_text("HF_TOKEN=hf_XXX\n");
  EXPECT_FALSE(placeholder.secret("HF_TOKEN"));
  EXPECT_THAT(placeholder.warnings().back(), HasSubstr("HF_TOKEN is the placeholder 'hf_XXX'"));
}

TEST(Config, BadOverrideSyntax) {
  auto problems = problems_of("A=1\n", {}, {"NOEQUALS", "1BAD=x"});
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_THAT(problems[0].message, HasSubstr("--set 'NOEQUALS'"));
}

TEST(Config, ParseErrorsSurfaceWithLocations) {
  try {
    resolve_text("A=$(id)\n");
    FAIL();
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.parse_errors().size(), 1u);
    EXPECT_EQ(e.parse_errors()[0].where.line, 1);
  }
}

TEST(Config, SuggestKeys) {
  EXPECT_EQ(suggest_keys("LORA_RR").front(), "LORA_R");
  EXPECT_EQ(suggest_keys("batch_size").front(), "BATCH_SIZE");
  EXPECT_TRUE(suggest_keys("COMPLETELY_UNRELATED_THING").empty());
}

TEST(Config, EveryDefaultIsValid) {
  // The table itself must hold: each default converts under its own type and range.
  EXPECT_NO_THROW(Config::resolve({std::nullopt, {}, {}}));
}

// ADD_EOS_TOKEN is the default trainer's: TRAINER=sft separates examples with EOS anyway.
TEST(Config, AddEosTokenWithSftIsPointedOut) {
  auto sft = resolve_text("TRAINER=sft\nADD_EOS_TOKEN=True\n");
  ASSERT_EQ(sft.warnings().size(), 1u);
  EXPECT_THAT(sft.warnings()[0], HasSubstr("ADD_EOS_TOKEN=True"));
  EXPECT_THAT(sft.warnings()[0], HasSubstr("has no effect with TRAINER=sft"));
  EXPECT_TRUE(resolve_text("TRAINER=default\nADD_EOS_TOKEN=True\n").warnings().empty());
  EXPECT_TRUE(resolve_text("TRAINER=sft\n").warnings().empty());
}

// LOAD_BEST_MODEL_AT_END chooses among steps both evaluated and saved: strategies that do not
// line up (HF Trainer refuses them) are said, with the fix; lined up, or without the choice, not.
TEST(Config, LoadBestWithMisalignedSaveAndEvalIsPointedOut) {
  auto steps_epoch = resolve_text("VALID_SPLIT=test\nEVAL_STRATEGY=steps\nEVAL_STEPS=20\n");
  ASSERT_EQ(steps_epoch.warnings().size(), 1u);
  EXPECT_THAT(steps_epoch.warnings()[0], HasSubstr("EVAL_STRATEGY=steps and SAVE_STRATEGY=epoch rarely meet"));
  EXPECT_THAT(steps_epoch.warnings()[0], HasSubstr("set SAVE_STRATEGY=steps with SAVE_STEPS a multiple of EVAL_STEPS"));
  auto not_multiple =
      resolve_text("VALID_SPLIT=test\nEVAL_STRATEGY=steps\nEVAL_STEPS=5\nSAVE_STRATEGY=steps\nSAVE_STEPS=15\n");
  ASSERT_EQ(not_multiple.warnings().size(), 0u);  // 15 is a multiple of 5
  auto off = resolve_text("VALID_SPLIT=test\nEVAL_STRATEGY=steps\nEVAL_STEPS=10\nSAVE_STRATEGY=steps\nSAVE_STEPS=15\n");
  ASSERT_EQ(off.warnings().size(), 1u);
  EXPECT_THAT(off.warnings()[0], HasSubstr("SAVE_STEPS=15 is not a multiple of EVAL_STEPS=10"));
  // SAVE_STRATEGY=no: said only when LOAD_BEST_MODEL_AT_END is asked for in so many words.
  EXPECT_TRUE(resolve_text("VALID_SPLIT=test\nSAVE_STRATEGY=no\n").warnings().empty());
  auto asked = resolve_text("VALID_SPLIT=test\nSAVE_STRATEGY=no\nLOAD_BEST_MODEL_AT_END=True\n");
  ASSERT_EQ(asked.warnings().size(), 1u);
  EXPECT_THAT(asked.warnings()[0], HasSubstr("the final weights are the last step's"));
  // No choice to make: without a validation set, or with LOAD_BEST_MODEL_AT_END=False.
  EXPECT_TRUE(resolve_text("EVAL_STRATEGY=no\nSAVE_STRATEGY=steps\n").warnings().empty());
  EXPECT_TRUE(
      resolve_text("VALID_SPLIT=test\nEVAL_STRATEGY=steps\nLOAD_BEST_MODEL_AT_END=False\n").warnings().empty());
}

}  // namespace
}  // namespace autotrain::config
