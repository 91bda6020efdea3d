// The command line, end to end: exit codes (DESIGN.md D8), `config --json`, error reports,
// and `setup`'s handling of the HF token.
#include <sys/stat.h>

#include <chrono>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace autotrain {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::CommandResult;
using testing::TempDir;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bin = testing::env_var("AUTOTRAIN_BIN");
    if (!bin) GTEST_SKIP() << "AUTOTRAIN_BIN not set (run through ctest)";
    bin_ = *bin;
    tutorial_ = std::string(AUTOTRAIN_TEST_SOURCE_DIR) + "/../configs/falcon.env";
  }

  // Runs autotrain in a clean environment (no inherited HF_TOKEN, PROJECT_ID, ...).
  CommandResult run(std::vector<std::string> args, std::vector<std::string> env = {},
                    const std::filesystem::path& cwd = {}, const std::string& stdin_text = {}) {
    args.insert(args.begin(), bin_);
    env.push_back("PATH=/usr/bin:/bin");
    env.push_back("HF_HUB_OFFLINE=1");  // no test reaches the real Hub (a test's own value comes first)
    env.push_back("HOME=" + home_.path().string());
    return testing::run_command(args, env, cwd.empty() ? home_.path() : cwd, stdin_text);
  }

  std::string bin_;
  std::string tutorial_;
  TempDir home_;
};

TEST_F(Cli, VersionAndHelp) {
  auto v = run({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_THAT(v.out, HasSubstr("autotrain "));
  auto h = run({"--help"});
  EXPECT_EQ(h.exit_code, 0);
  for (auto cmd : {"setup", "config", "data", "train", "eval", "tokenize", "quantize", "generate", "chat", "merge", "launch"})
    EXPECT_THAT(h.out, HasSubstr(cmd));
  // The commands that read a config name the global options in their own help.
  auto train_help = run({"train", "--help"});
  EXPECT_EQ(train_help.exit_code, 0);
  EXPECT_THAT(train_help.out, HasSubstr("--set KEY=VALUE"));
}

// The README's key table is what `config --keys` prints: one source for both (a key's default or
// meaning changed in the program shows up here until the README follows).
TEST_F(Cli, ReadmeKeyTableIsConfigKeys) {
  auto keys = run({"config", "--keys"});
  ASSERT_EQ(keys.exit_code, 0) << keys.err;
  const std::string readme = testing::read_file(std::string(AUTOTRAIN_TEST_SOURCE_DIR) + "/../README.md");
  EXPECT_NE(readme.find(keys.out), std::string::npos)
      << "README.md's key table differs from `autotrain config --keys`; replace it with that output:\n"
      << keys.out;
}

TEST_F(Cli, UsageErrorsExit2) {
  EXPECT_EQ(run({}).exit_code, 2);
  auto unknown = run({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown command 'frobnicate'"));
  EXPECT_EQ(run({"config", "--no-such-flag"}).exit_code, 2);
  EXPECT_EQ(run({"--log-level", "chatty", "config", "-c", tutorial_}).exit_code, 2);
}

// Every rank gets torchrun's variables, and the first failure decides the launcher's exit code.
TEST_F(Cli, LaunchStartsEveryRankWithTorchrunVariables) {
  auto r = run({"launch", "--nproc", "3", "--", "sh", "-c",
                "echo rank=$RANK/$WORLD_SIZE local=$LOCAL_RANK/$LOCAL_WORLD_SIZE at=$MASTER_ADDR:$MASTER_PORT"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int rank = 0; rank < 3; ++rank)
    EXPECT_THAT(r.out, HasSubstr("rank=" + std::to_string(rank) + "/3 local=" + std::to_string(rank) + "/3 at=127.0.0.1:"));
  auto nodes = run({"launch", "--nproc", "2", "--nnodes", "2", "--node-rank", "1", "--master-addr", "10.0.0.5",
                    "--master-port", "29511", "--", "sh", "-c", "echo $RANK $LOCAL_RANK $GROUP_RANK $MASTER_ADDR:$MASTER_PORT"});
  ASSERT_EQ(nodes.exit_code, 0) << nodes.err;
  EXPECT_THAT(nodes.out, HasSubstr("2 0 1 10.0.0.5:29511"));
  EXPECT_THAT(nodes.out, HasSubstr("3 1 1 10.0.0.5:29511"));
}

TEST_F(Cli, LaunchStopsTheOthersWhenOneFails) {
  // Rank 1 fails at once; rank 0 would sleep for a minute but is stopped (SIGTERM: 143 from sh).
  const auto start = std::chrono::steady_clock::now();
  auto r = run({"launch", "--nproc", "2", "--", "sh", "-c", "if [ $RANK = 1 ]; then exit 4; fi; sleep 60"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("rank 1 exited with 4; stopping the other 1 process"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  // Exit 3 (stopped because another process failed) never hides the failure that caused it,
  // even when that process ends later.
  auto caused = run({"launch", "--nproc", "2", "--", "sh", "-c", "if [ $RANK = 0 ]; then exit 3; fi; sleep 1; exit 5"});
  EXPECT_EQ(caused.exit_code, 5) << caused.err;
  EXPECT_THAT(caused.err, HasSubstr("launch: rank 1 exited with 5\n"));
  auto missing = run({"launch", "--nproc", "2", "--", "/no/such/program"});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_THAT(missing.err, HasSubstr("cannot run /no/such/program"));
  auto none = run({"launch", "--nproc", "2"});
  EXPECT_EQ(none.exit_code, 2);
  auto bad_node = run({"launch", "--nnodes", "2", "--node-rank", "2", "--master-addr", "h", "--", "true"});
  EXPECT_EQ(bad_node.exit_code, 2);
  EXPECT_THAT(bad_node.err, HasSubstr("--node-rank 2 is outside the 2 nodes"));
  auto no_addr = run({"launch", "--nnodes", "2", "--", "true"});
  EXPECT_EQ(no_addr.exit_code, 2);
  EXPECT_THAT(no_addr.err, HasSubstr("--nnodes > 1 needs --master-addr"));
}

TEST_F(Cli, ConfigJsonTutorialWithAndWithoutProjectId) {
  auto with = run({"config", "-c", tutorial_, "--json"}, {"PROJECT_ID=admin"});
  ASSERT_EQ(with.exit_code, 0) << with.err;
  auto j = nlohmann::json::parse(with.out);
  EXPECT_EQ(j["effective"]["AUTOTRAIN_PROJECT_NAME"], "falcon-7b/finetune-admin");
  EXPECT_EQ(j["values"]["AUTOTRAIN_PROJECT_NAME"], "falcon-7b/finetune-admin");
  EXPECT_EQ(j["values"]["LEARNING_RATE"], "2E-4");
  EXPECT_DOUBLE_EQ(j["effective"]["LEARNING_RATE"].get<double>(), 0.0002);
  EXPECT_EQ(j["sources"]["PROJECT_ID"], tutorial_ + ":1");

  auto without = run({"config", "-c", tutorial_, "--json"});
  ASSERT_EQ(without.exit_code, 0) << without.err;
  EXPECT_EQ(nlohmann::json::parse(without.out)["effective"]["AUTOTRAIN_PROJECT_NAME"], "falcon-7b/finetune-example");
}

TEST_F(Cli, ConfigFromEnvironmentVariableAndDefaultFile) {
  auto r = run({"config", "--json"}, {"AUTOTRAIN_CONFIG=" + tutorial_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["effective"]["MODEL_NAME"], "tiiuae/falcon-7b");
  // No -c, no $AUTOTRAIN_CONFIG: ./falcon.env in the current folder.
  TempDir dir;
  dir.write("falcon.env", "MODEL_NAME=local/model\n");
  auto local = run({"config", "--json"}, {}, dir.path());
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_EQ(nlohmann::json::parse(local.out)["effective"]["MODEL_NAME"], "local/model");
  auto none = run({"config"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("falcon.env"));
  EXPECT_THAT(none.err, HasSubstr("-c FILE"));
}

TEST_F(Cli, SetOverridesAndRejectsBadSyntax) {
  auto r = run({"config", "-c", tutorial_, "--set", "LORA_R=64", "--set", "PROJECT_ID=ci", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["effective"]["LORA_R"], 64);
  EXPECT_EQ(j["sources"]["LORA_R"], "cli");
  EXPECT_EQ(j["effective"]["AUTOTRAIN_PROJECT_NAME"], "falcon-7b/finetune-ci");
  auto bad = run({"config", "-c", tutorial_, "--set", "LORA_R"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("KEY=VALUE"));
}

TEST_F(Cli, ThreeMistakesAllReportedWithTheirLines) {
  TempDir dir;
  auto file = dir.write("bad.env", "MODEL_NAME=m\nLEARNING_RATE=fast\nLORA_R=0\n# ok\nUSE_FP16=maybe\n");
  for (auto cmd : {"config", "train", "data"}) {
    auto r = run({cmd, "-c", file.string()});
    EXPECT_EQ(r.exit_code, 2) << cmd;
    EXPECT_THAT(r.err, HasSubstr("LEARNING_RATE=fast (" + file.string() + ":2)"));
    EXPECT_THAT(r.err, HasSubstr("LORA_R=0 (" + file.string() + ":3)"));
    EXPECT_THAT(r.err, HasSubstr("USE_FP16=maybe (" + file.string() + ":5)"));
    EXPECT_THAT(r.err, HasSubstr("3 problems"));
  }
}

TEST_F(Cli, SyntaxErrorShowsLocationAndSnippet) {
  TempDir dir;
  auto file = dir.write("bad.env", "A=1\nB=$(curl evil)\n");
  auto r = run({"config", "-c", file.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(file.string() + ":2:3: error: command substitution"));
  EXPECT_THAT(r.err, HasSubstr("B=$(curl evil)"));
  EXPECT_THAT(r.err, HasSubstr("hint:"));
}

TEST_F(Cli, SetupStoresTokenPrivatelyAndNeverPrintsIt) {
  const std::string token = "hf_SeCrEt0123456789abcdefghijklmnopQ";
  TempDir work;
  auto hf_home = work.path() / "hf";
  auto config = work.write("falcon.env", "AUTOTRAIN_PROJECT_NAME=proj/run-1\nMODEL_NAME=tiiuae/falcon-7b\n"
                                         "DATA_PATH=timdettmers/openassistant-guanaco\nHF_TOKEN=${HF_TOKEN:=\"hf_XXX\"}\n");
  for (bool json : {false, true}) {
    std::vector<std::string> args = {"setup", "-c", config.string(), "--log-level", "debug"};
    if (json) args.push_back("--json");
    auto r = run(args, {"HF_HOME=" + hf_home.string(), "HF_TOKEN=" + token}, work.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr(token)));
    EXPECT_THAT(r.err, Not(HasSubstr(token)));
    EXPECT_THAT(r.out, Not(HasSubstr(token.substr(3, 20))));
    EXPECT_THAT(r.out, HasSubstr("hf_…nopQ"));
    if (json) {
      auto j = nlohmann::json::parse(r.out);
      EXPECT_TRUE(j["hf_token"]["stored"].get<bool>());
      EXPECT_TRUE(j["config"]["valid"].get<bool>());
      EXPECT_TRUE(j["environment"].contains("libtorch"));
      EXPECT_TRUE(j["environment"].contains("cuda_available"));
      EXPECT_TRUE(j["environment"]["disk"]["free_bytes"].get<uint64_t>() > 0);
    }
  }
  auto token_file = hf_home / "token";
  ASSERT_TRUE(std::filesystem::exists(token_file));
  EXPECT_EQ(testing::read_file(token_file), token);
  struct stat st {};
  ASSERT_EQ(stat(token_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_TRUE(std::filesystem::is_directory(work.path() / "proj" / "run-1"));
  // Nothing else in the working folder or HF_HOME holds the token (no temp files, no logs).
  for (const auto& e : std::filesystem::recursive_directory_iterator(work.path())) {
    if (!e.is_regular_file() || e.path() == token_file) continue;
    EXPECT_THAT(testing::read_file(e.path()), Not(HasSubstr(token))) << e.path();
  }
  // Typos that put the token where a command or a value was expected: the messages mask it.
  for (const auto& args : std::vector<std::vector<std::string>>{{"--set", "HF_TOKEN", token, "setup"},
                                                                 {"setup", "--token", "hf_ab", token}}) {
    auto r = run(args, {"HF_HOME=" + hf_home.string()}, work.path());
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.out + r.err, Not(HasSubstr(token.substr(3, 20))));
  }
}

TEST_F(Cli, SetupTokenFromFlagAndStdin) {
  TempDir work;
  auto hf_home = work.path() / "hf";
  const std::string token = "hf_fromstdin_0123456789ABCDEFGH";
  auto r = run({"setup", "--token", "-"}, {"HF_HOME=" + hf_home.string()}, work.path(), token + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::read_file(hf_home / "token"), token);
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(token)));
  auto placeholder = run({"setup", "--token", "hf_XXX"}, {"HF_HOME=" + (work.path() / "hf2").string()}, work.path());
  EXPECT_EQ(placeholder.exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(work.path() / "hf2" / "token"));
  EXPECT_THAT(placeholder.err, HasSubstr("placeholder"));
  // A bad token with no config file at all: the token is the problem, not a config that is not there.
  auto empty = run({"setup", "--token", " "}, {"HF_HOME=" + (work.path() / "hf3").string()}, work.path());
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_THAT(empty.out, Not(HasSubstr("NOT valid")));
}

// Without the CUDA backend LibTorch cannot be asked how it was built: setup says so rather than
// calling a CUDA build "CPU only".
TEST_F(Cli, SetupSaysWhenLibTorchsCudaBuildIsUnknown) {
  TempDir work;
  const std::vector<std::string> env = {"HF_HOME=" + (work.path() / "hf").string(),
                                        "AUTOTRAIN_CUDA_BACKEND=" + (work.path() / "absent.so").string()};
  auto j = run({"setup", "--json"}, env, work.path());
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_TRUE(nlohmann::json::parse(j.out)["environment"]["libtorch"]["cuda_build"].is_null()) << j.out;
  auto text = run({"setup"}, env, work.path());
  EXPECT_THAT(text.out, HasSubstr("CUDA build unknown: the CUDA backend is not loaded"));
  EXPECT_THAT(text.out, Not(HasSubstr("CPU only")));
}

TEST_F(Cli, SetupFailsOnInvalidConfig) {
  TempDir work;
  auto config = work.write("bad.env", "LORA_R=zero\n");
  auto r = run({"setup", "-c", config.string(), "--json"}, {"HF_HOME=" + (work.path() / "hf").string()}, work.path());
  EXPECT_EQ(r.exit_code, 2);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["config"]["valid"].get<bool>());
  EXPECT_THAT(r.err, HasSubstr("LORA_R=zero"));
  // A config that names no model and no data would fail every `data` and `train` job: both said
  // at once, and no project folder made for it.
  auto empty = work.write("empty.env", "AUTOTRAIN_PROJECT_NAME=proj\n");
  auto e = run({"setup", "-c", empty.string(), "--json"}, {"HF_HOME=" + (work.path() / "hf").string()}, work.path());
  EXPECT_EQ(e.exit_code, 2);
  EXPECT_FALSE(nlohmann::json::parse(e.out)["config"]["valid"].get<bool>());
  EXPECT_THAT(e.err, HasSubstr("MODEL_NAME is empty"));
  EXPECT_THAT(e.err, HasSubstr("DATA_PATH is empty"));
  EXPECT_FALSE(std::filesystem::exists(work.path() / "proj"));
  auto data = run({"data", "-c", empty.string()}, {"HF_HOME=" + (work.path() / "hf").string()}, work.path());
  EXPECT_EQ(data.exit_code, 2);
  EXPECT_THAT(data.err, HasSubstr("MODEL_NAME is empty"));
  EXPECT_THAT(data.err, HasSubstr("DATA_PATH is empty"));
}

// Global options (and their values) may come before the command, and a mistyped one is named.
// Before `launch` they go to the autotrain command it launches.
TEST_F(Cli, CommandWordFoundAfterGlobalOptions) {
  auto globals = run({"-c", "no-such.env", "--set", "A=B", "launch", "--nproc", "2", "--", "train", "--dry-run"});
  EXPECT_EQ(globals.exit_code, 2) << globals.err;  // each rank's train read the config named before launch
  EXPECT_THAT(globals.err, HasSubstr("no-such.env"));
  // Said in full once (by rank 0, with its hint); the other process says it in one line.
  const auto hint = globals.err.find("hint:");
  ASSERT_NE(hint, std::string::npos) << globals.err;
  EXPECT_EQ(globals.err.find("hint:", hint + 1), std::string::npos) << globals.err;
  EXPECT_THAT(globals.err, HasSubstr("rank 1: no-such.env: error: config file not found"));
  auto one_process = run({"launch", "--nproc", "2", "--", "data", "-c", "x.env"});
  EXPECT_EQ(one_process.exit_code, 2);
  EXPECT_THAT(one_process.err, HasSubstr("autotrain data runs on one process"));
  auto bogus = run({"-c", "x", "bogus"});
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_THAT(bogus.err, HasSubstr("unknown command 'bogus'"));
  auto bogus2 = run({"--log-level", "warn", "frobnicate", "--x"});
  EXPECT_EQ(bogus2.exit_code, 2);
  EXPECT_THAT(bogus2.err, HasSubstr("unknown command 'frobnicate'"));
}

TEST_F(Cli, ConfigThatIsAFolderIsAnError) {
  TempDir dir;
  auto r = run({"config", "-c", dir.path().string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("is a folder"));
  auto env = run({"config"}, {"AUTOTRAIN_CONFIG=" + dir.path().string()});
  EXPECT_EQ(env.exit_code, 2);
}

// DESIGN D8: secrets are never printed, not even in the error about the line that holds one.
TEST_F(Cli, ConfigErrorsNeverPrintTheToken) {
  const std::string secret = "SECRETabcdefghijklmnop";
  TempDir work;
  const std::vector<std::string> texts = {
      "HF_TOKEN=hf_" + secret + " extra\n",         "HF_TOKEN = hf_" + secret + "\n",
      "export HF_TOKEN = hf_" + secret + "\n",      "HF_TOKEN=\"hf_" + secret + "\nLORA_R=8\n",
      "HF_TOKEN=hf_" + secret + "|x\n",             "LORA_R=8\nhf_" + secret + "\n",
      "LORA_R=hf_" + secret + "\n",
  };
  int i = 0;
  for (const auto& text : texts) {
    // A model and data named: the exit code and "valid": false below are the slip's doing.
    auto file = work.write("s" + std::to_string(i++) + ".env", "MODEL_NAME=m\nDATA_PATH=d\n" + text);
    auto c = run({"config", "-c", file.string()});
    EXPECT_EQ(c.exit_code, 2) << text;
    EXPECT_EQ((c.out + c.err).find(secret.substr(0, 10)), std::string::npos) << text << "\n" << c.err;
    EXPECT_THAT(c.err, HasSubstr(file.string())) << text;
    auto s = run({"setup", "-c", file.string(), "--json"}, {"HF_HOME=" + (work.path() / "hf").string()}, work.path());
    EXPECT_EQ(s.exit_code, 2) << text;
    EXPECT_EQ((s.out + s.err).find(secret.substr(0, 10)), std::string::npos) << text << "\n" << s.out;
    EXPECT_FALSE(nlohmann::json::parse(s.out)["config"]["valid"].get<bool>());
  }
}

// Pasted tokens lose surrounding blanks; nothing usable left, or blanks inside, is bad input
// (exit 2) that says which.
TEST_F(Cli, SetupTokenInputIsTrimmedAndChecked) {
  TempDir work;
  const std::string token = "hf_pasted0123456789ABCDEFGHIJ";
  auto hf = [&](const std::string& name) { return "HF_HOME=" + (work.path() / name).string(); };
  auto spaced = run({"setup", "--token", "-"}, {hf("a")}, work.path(), "  " + token + " \t\r\n");
  ASSERT_EQ(spaced.exit_code, 0) << spaced.err;
  EXPECT_EQ(testing::read_file(work.path() / "a" / "token"), token);
  auto flag = run({"setup", "--token", " " + token}, {hf("b")}, work.path());
  ASSERT_EQ(flag.exit_code, 0) << flag.err;
  EXPECT_EQ(testing::read_file(work.path() / "b" / "token"), token);
  auto empty = run({"setup", "--token", "-"}, {hf("c")}, work.path(), "");
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_THAT(empty.err, HasSubstr("is empty"));
  EXPECT_FALSE(std::filesystem::exists(work.path() / "c" / "token"));
  auto blank = run({"setup", "--token", "-", "--json"}, {hf("d")}, work.path(), "   \n");
  EXPECT_EQ(blank.exit_code, 2);
  EXPECT_THAT(blank.err, HasSubstr("is empty"));
  EXPECT_FALSE(nlohmann::json::parse(blank.out)["hf_token"]["stored"].get<bool>());
  // --token "$HF_TOKEN" with the variable unset: an empty token is checked, not taken as no option.
  auto unset_variable = run({"setup", "--token", ""}, {hf("f")}, work.path());
  EXPECT_EQ(unset_variable.exit_code, 2) << unset_variable.err;
  EXPECT_THAT(unset_variable.err, HasSubstr("is empty"));
  EXPECT_FALSE(std::filesystem::exists(work.path() / "f" / "token"));
  auto inner = run({"setup", "--token", "hf_two words0123456789"}, {hf("e")}, work.path());
  EXPECT_EQ(inner.exit_code, 2);
  EXPECT_THAT(inner.err, HasSubstr("whitespace"));
  EXPECT_THAT(inner.out + inner.err, Not(HasSubstr("words0123456789")));
  EXPECT_FALSE(std::filesystem::exists(work.path() / "e" / "token"));
}

// huggingface_hub expands ~ in HF_HOME (os.path.expanduser): so must we, not create ./~/.
TEST_F(Cli, SetupExpandsTildeInHfHome) {
  TempDir work;
  const std::string token = "hf_tilde0123456789ABCDEFGHIJKL";
  auto r = run({"setup", "--token", token}, {"HF_HOME=~/hfx"}, work.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::read_file(home_.path() / "hfx" / "token"), token);
  EXPECT_FALSE(std::filesystem::exists(work.path() / "~"));
}

// README: "with no config file at all it reports the machine and exits 0" (no project folder).
TEST_F(Cli, SetupWithoutConfigCreatesNoProjectFolder) {
  TempDir work;
  auto r = run({"setup", "--json"}, {"HF_HOME=" + (work.path() / "hf").string()}, work.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out)["project_dir"].is_null());
  EXPECT_FALSE(std::filesystem::exists(work.path() / "my_autotrain_llm"));
  // Named explicitly, it is created.
  auto named = run({"setup", "--json", "--set", "AUTOTRAIN_PROJECT_NAME=p"}, {"HF_HOME=" + (work.path() / "hf").string()},
                   work.path());
  ASSERT_EQ(named.exit_code, 0) << named.err;
  EXPECT_TRUE(std::filesystem::is_directory(work.path() / "p"));
}

class CliTiny : public Cli {
 protected:
  std::string tiny_env() const { return std::string(AUTOTRAIN_TEST_SOURCE_DIR) + "/../configs/tiny.env"; }
  CommandResult tiny(const std::filesystem::path& model, const std::filesystem::path& data, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"tiny", "-c", tiny_env(), "--set", "MODEL_NAME=" + model.string(), "--set",
                                     "DATA_PATH=" + data.string()};
    args.insert(args.end(), more.begin(), more.end());
    return run(args);
  }
};

// README: "Existing files are kept unless --force": a folder holding all the files is kept, one
// holding only some of them (a real model's config.json, say) is refused before anything is written.
TEST_F(CliTiny, KeepsCompleteFoldersAndRefusesPartialOnes) {
  TempDir work;
  auto model = work.path() / "m", data = work.path() / "d";
  auto first = tiny(model, data);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string weights = testing::read_file(model / "model.safetensors");
  auto again = tiny(model, data);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("already there, kept"));

  // Someone else's model folder: config.json and a tokenizer, no model.safetensors.
  auto other = work.path() / "real";
  std::filesystem::create_directories(other);
  work.write("real/config.json", "{\"mine\": true}");
  work.write("real/tokenizer.json", "{}");
  auto refused = tiny(other, work.path() / "d2");
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr("config.json"));
  EXPECT_THAT(refused.err, HasSubstr("--force"));
  EXPECT_EQ(testing::read_file(other / "config.json"), "{\"mine\": true}");
  EXPECT_FALSE(std::filesystem::exists(other / "model.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(work.path() / "d2"));  // nothing written at all

  // A dataset folder with only train.jsonl.
  std::filesystem::create_directories(work.path() / "d3");
  work.write("d3/train.jsonl", "{\"text\": \"mine\"}\n");
  auto refused_data = tiny(work.path() / "m3", work.path() / "d3");
  EXPECT_EQ(refused_data.exit_code, 2);
  EXPECT_THAT(refused_data.err, HasSubstr("train.jsonl"));
  EXPECT_EQ(testing::read_file(work.path() / "d3" / "train.jsonl"), "{\"text\": \"mine\"}\n");

  auto forced = tiny(other, work.path() / "d3", {"--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_TRUE(std::filesystem::exists(other / "model.safetensors"));
  EXPECT_EQ(testing::read_file(model / "model.safetensors"), weights);
}

// falcon.env's MODEL_NAME is a hub id: `tiny` must not write a toy model at ./tiiuae/falcon-7b.
TEST_F(CliTiny, RefusesAHubIdAsTheFolder) {
  TempDir work;
  auto r = run({"tiny", "-c", tutorial_}, {}, work.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("MODEL_NAME=tiiuae/falcon-7b"));
  EXPECT_THAT(r.err, HasSubstr("--set MODEL_NAME="));
  EXPECT_THAT(r.err, HasSubstr("--set DATA_PATH="));
  EXPECT_FALSE(std::filesystem::exists(work.path() / "tiiuae"));
  EXPECT_FALSE(std::filesystem::exists(work.path() / "timdettmers"));
  // The embedded default works in a fresh folder (./runs/... are folders, not ids).
  auto fresh = run({"tiny", "-c", tiny_env()}, {}, work.path());
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  EXPECT_TRUE(std::filesystem::exists(work.path() / "runs" / "tiny-falcon" / "model.safetensors"));
}

// README's example `tokenize --tokenizer tiiuae/falcon-7b`: a hub id resolves in the cache as
// --model does (HF_HOME's ~ expanded too), and when it does not, the error says where it looked.
TEST_F(CliTiny, TokenizeResolvesHubIdsInTheCache) {
  TempDir work;
  auto hub = home_.path() / "hfh" / "hub";
  auto snapshot = hub / "models--org--tiny" / "snapshots" / "abc123";
  std::filesystem::create_directories(hub / "models--org--tiny" / "refs");
  {
    std::ofstream(hub / "models--org--tiny" / "refs" / "main") << "abc123";
  }
  auto made = tiny(snapshot, work.path() / "d");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto direct = run({"tokenize", "--tokenizer", snapshot.string(), "--text", "### Human: Hello", "--json"});
  ASSERT_EQ(direct.exit_code, 0) << direct.err;
  auto by_id = run({"tokenize", "--tokenizer", "org/tiny", "--text", "### Human: Hello", "--json"}, {"HF_HOME=~/hfh"});
  ASSERT_EQ(by_id.exit_code, 0) << by_id.err;
  EXPECT_EQ(by_id.out, direct.out);
  // An id without an org (gpt2-style) is a hub id too.
  std::filesystem::create_directories(hub / "models--tiny" / "refs");
  std::ofstream(hub / "models--tiny" / "refs" / "main") << "abc123";
  std::filesystem::create_directories(hub / "models--tiny" / "snapshots");
  std::filesystem::create_directory_symlink(snapshot, hub / "models--tiny" / "snapshots" / "abc123");
  auto bare = run({"tokenize", "--tokenizer", "tiny", "--text", "### Human: Hello", "--json"}, {"HF_HOME=~/hfh"});
  ASSERT_EQ(bare.exit_code, 0) << bare.err;
  EXPECT_EQ(bare.out, direct.out);
  auto missing = run({"tokenize", "--tokenizer", "org/absent", "--text", "x"}, {"HF_HOME=~/hfh"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("Looked at"));
  EXPECT_THAT(missing.err, HasSubstr((hub / "models--org--absent").string()));
  // tokenize (like eval and quantize) reads no config: -c/--set are said to be ignored.
  auto with_config = run({"tokenize", "--tokenizer", snapshot.string(), "--text", "x", "--set", "LORA_R=8"});
  EXPECT_EQ(with_config.exit_code, 0) << with_config.err;
  EXPECT_THAT(with_config.err, HasSubstr("warning: tokenize does not read the config: -c/--set are ignored"));
  EXPECT_THAT(direct.err, Not(HasSubstr("does not read the config")));
  // A folder for --jsonl opens and reads as empty: said instead of printing nothing.
  auto folder = run({"tokenize", "--tokenizer", snapshot.string(), "--jsonl", work.path().string()});
  EXPECT_EQ(folder.exit_code, 2);
  EXPECT_THAT(folder.err, HasSubstr("is a folder"));
  // A folder without tokenizer files is a wrong --tokenizer (2), not a broken tokenizer (1).
  auto empty = run({"tokenize", "--tokenizer", work.path().string(), "--text", "x"});
  EXPECT_EQ(empty.exit_code, 2) << empty.err;
  EXPECT_THAT(empty.err, HasSubstr("no tokenizer.json or tokenizer.model in this folder"));
}

// The tutorial's autotrain.sh sourced falcon.env under `set -a`, so an HF_HOME written in the
// file decided where the model was found. `data` with such a file finds the hub id in that cache
// (the process environment has no HF_HOME), and says nothing about an unknown key.
TEST_F(CliTiny, HfHomeInTheConfigFileReachesTheModelLookup) {
  TempDir work;
  auto hub = work.path() / "hf" / "hub";
  auto snapshot = hub / "models--org--tiny" / "snapshots" / "abc123";
  std::filesystem::create_directories(hub / "models--org--tiny" / "refs");
  { std::ofstream(hub / "models--org--tiny" / "refs" / "main") << "abc123"; }
  auto made = tiny(snapshot, work.path() / "d");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto config = work.write("falcon.env", "HF_HOME=\"" + (work.path() / "hf").string() +
                                             "\"\nMODEL_NAME=org/tiny\nDATA_PATH=./d\nVALID_SPLIT=test\nBLOCK_SIZE=64\n"
                                             "AUTOTRAIN_PROJECT_NAME=p\n");
  auto r = run({"data", "-c", config.string()}, {}, work.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("unknown key HF_HOME")));
  EXPECT_TRUE(std::filesystem::exists(work.path() / "p" / "autotrain-data" / "manifest.json"));
}

// `bash autotrain.sh data` ran dataload.py, which needed no model: `data` before the model is
// downloaded writes DATA_FILE, says why the token cache waits, and succeeds; `train` then needs
// the model.
TEST_F(Cli, DataBeforeTheModelIsDownloaded) {
  TempDir work;
  work.write("d/train.jsonl", "{\"text\": \"### Human: hi### Assistant: yo\"}\n");
  auto config = work.write("falcon.env", "HF_HOME=\"" + (work.path() / "hf").string() +
                                             "\"\nMODEL_NAME=org/not-yet\nDATA_PATH=./d\nAUTOTRAIN_PROJECT_NAME=p\n");
  auto r = run({"data", "-c", config.string()}, {}, work.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("warning: token cache not built: MODEL_NAME: model 'org/not-yet' not found"));
  EXPECT_THAT(r.err, HasSubstr("autotrain download org/not-yet"));
  EXPECT_THAT(r.out, HasSubstr("train: 1 row (not tokenized)"));
  EXPECT_EQ(testing::read_file(work.path() / "train.csv"), "text\n### Human: hi### Assistant: yo\n");
  auto t = run({"train", "-c", config.string(), "--dry-run"}, {}, work.path());
  EXPECT_EQ(t.exit_code, 2) << t.err;
  EXPECT_THAT(t.err, HasSubstr("model 'org/not-yet' not found"));
}

TEST_F(Cli, EvalBlockSizeMustBePositive) {
  auto r = run({"eval", "--model", "m", "--data", "d.jsonl", "--block-size", "0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("positive whole number"));
  EXPECT_THAT(r.err, Not(HasSubstr("1.79")));
}

TEST_F(Cli, WarningsHaveOneSeverityPrefix) {
  TempDir dir;
  auto file = dir.write("bom.env", "\xEF\xBB\xBF" "LORA_R=8\n");
  auto r = run({"config", "-c", file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("warning: " + file.string() + ":1:1: file starts with a UTF-8 byte-order mark"));
  EXPECT_THAT(r.err, Not(HasSubstr(":1:1: warning")));
}

// The tutorial's script sets PROJECT_ID=admin itself (autotrain-behaviour.md 1.2, G4): only -p
// changes it, not a PROJECT_ID left in the environment. Checked with a stand-in binary.
TEST_F(Cli, WrapperScriptProjectIdAsTheTutorial) {
  TempDir dir;
  auto fake = dir.write("fake-autotrain", "#!/bin/sh\necho \"PROJECT_ID=$PROJECT_ID $*\"\n");
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
  const std::string script = std::string(AUTOTRAIN_TEST_SOURCE_DIR) + "/../scripts/autotrain.sh";
  auto plain = testing::run_command({"/bin/bash", script, "train", "-m", "tiny", "--set", "LORA_R=4"},
                                    {"PATH=/usr/bin:/bin", "AUTOTRAIN_BIN=" + fake.string(), "PROJECT_ID=stale"}, dir.path());
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_THAT(plain.out, HasSubstr("PROJECT_ID=admin train -c "));
  EXPECT_THAT(plain.out, HasSubstr("configs/tiny.env --set LORA_R=4"));
  auto pid = testing::run_command({"/bin/bash", script, "data", "-p", "bob"},
                                  {"PATH=/usr/bin:/bin", "AUTOTRAIN_BIN=" + fake.string(), "PROJECT_ID=stale"}, dir.path());
  ASSERT_EQ(pid.exit_code, 0) << pid.err;
  EXPECT_THAT(pid.out, HasSubstr("PROJECT_ID=bob data -c "));
  // -m NAME is tried as given first, as the tutorial's script did: an absolute path works.
  const std::string tiny = std::string(AUTOTRAIN_TEST_SOURCE_DIR) + "/../configs/tiny";
  auto absolute = testing::run_command({"/bin/bash", script, "train", "-m", tiny},
                                       {"PATH=/usr/bin:/bin", "AUTOTRAIN_BIN=" + fake.string()}, dir.path());
  ASSERT_EQ(absolute.exit_code, 0) << absolute.err;
  EXPECT_THAT(absolute.out, HasSubstr("train -c " + tiny + ".env"));
  auto missing = testing::run_command({"/bin/bash", script, "train", "-m", dir.path().string() + "/nope"},
                                      {"PATH=/usr/bin:/bin", "AUTOTRAIN_BIN=" + fake.string()}, dir.path());
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("nope.env"));
  // The tutorial's third command, test (its test.py generated text from the trained model):
  // generate with the config's model and adapter, from its prompt.
  auto test = testing::run_command({"/bin/bash", script, "test", "-m", "tiny"},
                                   {"PATH=/usr/bin:/bin", "AUTOTRAIN_BIN=" + fake.string()}, dir.path());
  ASSERT_EQ(test.exit_code, 0) << test.err;
  EXPECT_THAT(test.out, HasSubstr("PROJECT_ID=admin generate -c "));
  EXPECT_THAT(test.out, HasSubstr("configs/tiny.env --prompt Hello, how are you today? --max-new-tokens 20"));
  // Any option starting with -h prints the usage, as the tutorial's `-h*` pattern did.
  auto help = testing::run_command({"/bin/bash", script, "train", "-hx"}, {"PATH=/usr/bin:/bin", "AUTOTRAIN_BIN=" + fake.string()},
                                   dir.path());
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("Usage: bash scripts/autotrain.sh"));
}

}  // namespace
}  // namespace autotrain
