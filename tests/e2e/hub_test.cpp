// Downloads from the Hugging Face Hub, against tests/reference/hub/fake_hub.py (the Hub's
// endpoints, answered as the Hub answers them). huggingface_hub itself downloads from the same
// server, and is the oracle: the cache we write must be the one it writes, and it (and
// transformers) must read ours offline.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "autotrain/hub/hub.h"
#include "support/test_support.h"

namespace autotrain {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::CommandResult;
using testing::TempDir;

extern "C" char** environ;

constexpr const char* kToken = "hf_FakeHubToken1234567890";
const std::vector<std::string> kModelPatterns = {"*.json", "*.safetensors", "tokenizer.model"};

std::string source_dir() { return AUTOTRAIN_TEST_SOURCE_DIR; }

// The environment of this process without anything that points the Hugging Face libraries
// elsewhere (CTest sets HF_HUB_OFFLINE=1 for every test), plus `extra`.
std::vector<std::string> clean_env(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    const std::string name = kv.substr(0, kv.find('='));
    if (name.rfind("HF_", 0) == 0 || name.rfind("HUGGING", 0) == 0 || name == "TRANSFORMERS_OFFLINE") continue;
    env.push_back(kv);
  }
  env.push_back("HF_HUB_DISABLE_TELEMETRY=1");
  // A later setting of a name replaces an earlier one (getenv would see the first).
  for (const auto& kv : extra) {
    const std::string name = kv.substr(0, kv.find('=') + 1);
    std::erase_if(env, [&](const std::string& e) { return e.rfind(name, 0) == 0; });
    env.push_back(kv);
  }
  return env;
}

// One fake hub (and its CDN) serving `root`, for one test.
class FakeHub {
 public:
  FakeHub(const fs::path& root, const std::vector<std::string>& flags) {
    const fs::path info = dir_.path() / "info.json";
    log_ = dir_.path() / "info.json.log";
    std::vector<std::string> argv = {*testing::env_var("AUTOTRAIN_PYTHON"), source_dir() + "/reference/hub/fake_hub.py",
                                     root.string(), info.string(), "--token", kToken, "--page-size", "2"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    for (int i = 0; i < 300 && !fs::exists(info); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto j = nlohmann::json::parse(testing::read_file(info));
    endpoint_ = j.at("endpoint").get<std::string>();
  }
  ~FakeHub() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  const std::string& endpoint() const { return endpoint_; }

  // What was uploaded to it (fake_hub.py's /_state).
  nlohmann::json state() const {
    auto r = testing::run_command({*testing::env_var("AUTOTRAIN_PYTHON"), "-c",
                                   "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())",
                                   endpoint_ + "/_state"});
    return nlohmann::json::parse(r.out);
  }

  // The requests it got: {"server": "hub"|"cdn", "method", "path", "auth", "range"}.
  std::vector<nlohmann::json> requests() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(log_);
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

 private:
  TempDir dir_;
  fs::path log_;
  pid_t pid_ = -1;
  std::string endpoint_;
};

class HubTest : public ::testing::Test {
 protected:
  // The repositories, written once: the embedded tiny model and dataset (by `autotrain tiny`),
  // a gated copy of the model, and a model with pickle weights only.
  static void SetUpTestSuite() {
    root_ = new TempDir();
    const fs::path models = root_->path() / "models" / "org";
    auto r = testing::run_command({bin(), "tiny", "-c", source_dir() + "/../configs/tiny.env", "--set",
                                   "MODEL_NAME=" + (models / "tiny").string(), "--set",
                                   "DATA_PATH=" + (root_->path() / "datasets" / "org" / "guanaco").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fs::copy(models / "tiny", models / "gated");
    std::ofstream(models / "gated" / ".gated").put('\n');
    fs::create_directories(models / "pickle");
    std::ofstream(models / "pickle" / "config.json") << R"({"model_type": "falcon"})";
    std::ofstream(models / "pickle" / "pytorch_model.bin") << "not really a pickle";
  }
  static void TearDownTestSuite() {
    delete root_;
    root_ = nullptr;
  }

  static std::string bin() { return *testing::env_var("AUTOTRAIN_BIN"); }
  static fs::path root() { return root_->path(); }
  fs::path cache(const char* name) const { return work_.path() / name / "hub"; }

  // `autotrain <args>` with the hub at `hub`, the cache under work_/<home>.
  CommandResult autotrain(const FakeHub& hub, const char* home, const std::vector<std::string>& args,
                          const std::vector<std::string>& env = {}) const {
    std::vector<std::string> argv = {bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> e = {"HF_ENDPOINT=" + hub.endpoint(), "HF_HOME=" + (work_.path() / home).string()};
    e.insert(e.end(), env.begin(), env.end());
    return testing::run_command(argv, clean_env(e), work_.path());
  }

  CommandResult python(const FakeHub& hub, const char* home, std::vector<std::string> args,
                       const std::vector<std::string>& env = {}) const {
    args.insert(args.begin(), {*testing::env_var("AUTOTRAIN_PYTHON"), source_dir() + "/reference/hub/hub_ref.py"});
    std::vector<std::string> e = {"HF_ENDPOINT=" + hub.endpoint(), "HF_HOME=" + (work_.path() / home).string()};
    e.insert(e.end(), env.begin(), env.end());
    return testing::run_command(args, clean_env(e), work_.path());
  }

  static TempDir* root_;
  TempDir work_;
};

TempDir* HubTest::root_ = nullptr;

std::string data_sha256(const fs::path& file) {
  auto r = testing::run_command({*testing::env_var("AUTOTRAIN_PYTHON"), "-c",
                                 "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())",
                                 file.string()});
  return r.out.substr(0, r.out.find('\n'));
}

// Every entry under `cache` but the lock files: path -> link target, or the bytes of a file
// (a tree listing parsed, as its key order is not part of the format).
std::map<std::string, std::string> layout(const fs::path& cache) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(cache); it != fs::recursive_directory_iterator(); ++it) {
    const std::string rel = fs::relative(it->path(), cache).string();
    if (rel.rfind(".locks", 0) == 0) continue;
    if (it->is_symlink())
      out[rel] = "-> " + fs::read_symlink(it->path()).string();
    else if (it->is_regular_file())
      out[rel] = rel.find("/trees/") != std::string::npos ? nlohmann::json::parse(testing::read_file(it->path())).dump()
                                                          : testing::read_file(it->path());
    else
      out[rel] = "(folder)";
  }
  return out;
}

TEST_F(HubTest, DownloadWritesTheCacheHuggingfaceHubWritesAndItReadsOursOffline) {
  FakeHub hub(root(), {});
  auto ours = autotrain(hub, "ours", {"download", "org/tiny", "--json"});
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  const auto summary = nlohmann::json::parse(ours.out);
  EXPECT_EQ(summary["downloaded_files"], 5);
  std::vector<std::string> args = {"download", "org/tiny", "model"};
  args.insert(args.end(), kModelPatterns.begin(), kModelPatterns.end());
  auto theirs = python(hub, "theirs", args);
  ASSERT_EQ(theirs.exit_code, 0) << theirs.err;
  EXPECT_EQ(summary["snapshot"].get<std::string>(),
            (cache("ours") / fs::relative(fs::path(theirs.out.substr(0, theirs.out.find('\n'))), cache("theirs"))).string());
  const auto a = layout(cache("ours")), b = layout(cache("theirs"));
  EXPECT_EQ(a, b);  // blobs named by ETag, relative snapshot links, refs/main, trees/, CACHEDIR.TAG
  EXPECT_TRUE(a.count("models--org--tiny/refs/main"));

  std::vector<std::string> check = {"check", "org/tiny", "model", (root() / "models" / "org" / "tiny").string()};
  check.insert(check.end(), kModelPatterns.begin(), kModelPatterns.end());
  auto offline = python(hub, "ours", check, {"HF_HUB_OFFLINE=1"});
  EXPECT_EQ(offline.exit_code, 0) << offline.err;
  EXPECT_THAT(offline.out, HasSubstr("ok"));
}

TEST_F(HubTest, ReusesWhatHuggingfaceHubDownloadedAndFetchesNothingAgain) {
  FakeHub hub(root(), {});
  std::vector<std::string> args = {"download", "org/tiny", "model"};
  args.insert(args.end(), kModelPatterns.begin(), kModelPatterns.end());
  ASSERT_EQ(python(hub, "shared", args).exit_code, 0);
  const size_t before = hub.requests().size();
  auto r = autotrain(hub, "shared", {"download", "org/tiny", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["downloaded_files"], 0);
  // It asks which commit main is and what it holds (as huggingface_hub does), and fetches no file.
  const auto requests = hub.requests();
  for (size_t i = before; i < requests.size(); ++i) {
    const std::string path = requests[i]["path"];
    EXPECT_TRUE(path.rfind("/api/", 0) == 0 || requests[i]["method"] == "HEAD") << requests[i];
  }
}

TEST_F(HubTest, AnInterruptedTransferResumesWhereItStopped) {
  FakeHub hub(root(), {"--drop-after", "1000"});
  auto r = autotrain(hub, "home", {"download", "org/tiny", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool resumed = false;
  for (const auto& q : hub.requests()) resumed = resumed || (q["server"] == "cdn" && q["range"] == "bytes=1000-");
  EXPECT_TRUE(resumed);
  const fs::path snapshot = nlohmann::json::parse(r.out)["snapshot"].get<std::string>();
  EXPECT_EQ(testing::read_file(snapshot / "model.safetensors"),
            testing::read_file(root() / "models" / "org" / "tiny" / "model.safetensors"));
}

// A partial blob an interrupted run left (blobs/<etag>.incomplete) is resumed where it stopped;
// from a server that ignores the Range, the whole file comes again, and is what is kept.
TEST_F(HubTest, APartialFileAnEarlierRunLeftIsResumed) {
  const fs::path model = root() / "models" / "org" / "tiny" / "model.safetensors";
  const std::string bytes = testing::read_file(model), sha = data_sha256(model);
  for (bool ignore_range : {false, true}) {
    FakeHub hub(root(), ignore_range ? std::vector<std::string>{"--ignore-range"} : std::vector<std::string>{});
    const char* home = ignore_range ? "whole" : "resumed";
    const fs::path blobs = cache(home) / "models--org--tiny" / "blobs";
    fs::create_directories(blobs);
    std::ofstream(blobs / (sha + ".incomplete"), std::ios::binary) << bytes.substr(0, 1000);
    auto r = autotrain(hub, home, {"download", "org/tiny", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bool ranged = false;
    for (const auto& q : hub.requests()) ranged = ranged || (q["server"] == "cdn" && q["range"] == "bytes=1000-");
    EXPECT_TRUE(ranged) << ignore_range;
    const fs::path snapshot = nlohmann::json::parse(r.out)["snapshot"].get<std::string>();
    EXPECT_EQ(testing::read_file(snapshot / "model.safetensors"), bytes) << ignore_range;
    EXPECT_FALSE(fs::exists(blobs / (sha + ".incomplete")));
  }
}

// Patterns select files as huggingface_hub's allow_patterns do: Python's fnmatchcase is the oracle.
TEST_F(HubTest, PatternsMatchAsPythonsFnmatchcase) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"*.json", "config.json"}, {"*.json", "onnx/config.json"}, {"*.json", "a.json.bak"}, {"model-?.bin", "model-1.bin"},
      {"model-?.bin", "model-10.bin"}, {"[mt]*", "tokenizer.json"}, {"[!mt]*", "tokenizer.json"}, {"[^b]x", "bx"},
      {"[^b]x", "^x"}, {"[a-c]*", "b.txt"}, {"[]]x", "]x"}, {"[!]]x", "ax"}, {"[", "["}, {"a*b*c", "axxbyyc"},
      {"a*b*c", "axxbyy"}, {"*", ""}, {"data/*-[0-9]*.parquet", "data/train-00000-of-00001.parquet"},
      {"*.JSON", "config.json"}, {"?", "/"}, {"**/*.txt", "a/b/c.txt"}, {"[z-a]", "m"},
      {"?n?/*", "\u00fcn\u00ef/\u65e5\u672c.txt"}, {"[!a-z]*", "\u00fcber.txt"}, {"[\u00e0-\u00ff]x", "\u00e9x"}};
  std::string script = "import fnmatch, json, sys\nfor p, s in json.loads(sys.argv[1]): print(int(fnmatch.fnmatchcase(s, p)))";
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [p, str] : cases) list.push_back({p, str});
  auto r = testing::run_command({*testing::env_var("AUTOTRAIN_PYTHON"), "-c", script, list.dump()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream answers(r.out);
  for (const auto& [p, str] : cases) {
    int expected = -1;
    answers >> expected;
    EXPECT_EQ(hub::glob_match(p, str), expected == 1) << "pattern " << p << " on " << str;
  }
}

TEST_F(HubTest, CorruptedBytesAreRefusedAndNothingIsLinked) {
  FakeHub hub(root(), {"--corrupt"});
  auto r = autotrain(hub, "home", {"download", "org/tiny"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("SHA-256"));
  EXPECT_THAT(r.err, HasSubstr("corrupted in transfer"));
  EXPECT_FALSE(fs::exists(cache("home") / "models--org--tiny" / "refs" / "main"));
  for (const auto& e : fs::directory_iterator(cache("home") / "models--org--tiny" / "blobs"))
    EXPECT_EQ(e.path().filename().string().size(), 40u) << "only small (non-LFS) blobs may be there: " << e.path();
}

TEST_F(HubTest, AGatedModelNeedsTheTokenWhichNeverLeavesTheHub) {
  FakeHub hub(root(), {});
  auto denied = autotrain(hub, "home", {"download", "org/gated"});
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_THAT(denied.err, HasSubstr("org/gated is gated"));
  EXPECT_THAT(denied.err, HasSubstr("autotrain setup --token"));

  // From $HF_TOKEN, and from the token file `setup` writes.
  auto by_env = autotrain(hub, "home", {"download", "org/gated"}, {std::string("HF_TOKEN=") + kToken});
  EXPECT_EQ(by_env.exit_code, 0) << by_env.err;
  auto stored = testing::run_command({bin(), "setup", "--token", "-"},
                                     clean_env({"HF_HOME=" + (work_.path() / "home2").string()}), work_.path(),
                                     std::string(kToken) + "\n");
  ASSERT_EQ(stored.exit_code, 0) << stored.err;
  auto by_file = autotrain(hub, "home2", {"download", "org/gated"});
  EXPECT_EQ(by_file.exit_code, 0) << by_file.err;
  // From a config given with -c: its HF_TOKEN, and its HF_HOME, so a login node fetches into the
  // cache the config's jobs will read.
  const fs::path config = work_.path() / "login.env";
  std::ofstream(config) << "export HF_HOME=" << (work_.path() / "home3").string() << "\nHF_TOKEN=" << kToken << "\n";
  auto by_config = autotrain(hub, "home", {"download", "-c", config.string(), "org/gated", "--json"});
  ASSERT_EQ(by_config.exit_code, 0) << by_config.err;
  EXPECT_EQ(fs::path(nlohmann::json::parse(by_config.out)["snapshot"].get<std::string>()).parent_path().parent_path(),
            cache("home3") / "models--org--gated");

  bool sent = false;
  for (const auto& q : hub.requests()) {
    if (q["server"] == "cdn") {
      EXPECT_EQ(q["auth"], "") << "the token went to the CDN: " << q;
    }
    sent = sent || q["auth"] == std::string("Bearer ") + kToken;
  }
  EXPECT_TRUE(sent);
  for (const auto* r : {&denied, &by_env, &by_file, &by_config}) {
    EXPECT_THAT(r->out, Not(HasSubstr(kToken)));
    EXPECT_THAT(r->err, Not(HasSubstr(kToken)));
  }
}

TEST_F(HubTest, TrainFetchesTheModelAndDatasetItIsGivenByIdThenRunsOffline) {
  FakeHub hub(root(), {});
  const std::vector<std::string> run = {"train", "-c", source_dir() + "/../configs/tiny.env", "--set",
                                        "MODEL_NAME=org/tiny", "--set", "DATA_PATH=org/guanaco", "--set",
                                        "AUTOTRAIN_PROJECT_NAME=proj", "--set", "DATA_FILE=proj-train.csv",
                                        "--max-steps", "2"};
  // `data` needs the tokenizer and config.json, not the weights; `train` then fetches those.
  std::vector<std::string> data = run;
  data[0] = "data";
  data.resize(data.size() - 2);  // no --max-steps
  auto prepared = autotrain(hub, "home", data);
  ASSERT_EQ(prepared.exit_code, 0) << prepared.err;
  EXPECT_THAT(prepared.err, HasSubstr("model org/tiny (its config and tokenizer) is not in the cache: downloading"));
  EXPECT_THAT(prepared.err, HasSubstr("dataset org/guanaco is not in the cache: downloading"));
  const fs::path snapshots = cache("home") / "models--org--tiny" / "snapshots";
  ASSERT_TRUE(fs::exists(snapshots));
  for (const auto& snapshot : fs::directory_iterator(snapshots)) {
    EXPECT_TRUE(fs::exists(snapshot.path() / "tokenizer.json"));
    EXPECT_FALSE(fs::exists(snapshot.path() / "model.safetensors"));
  }
  auto first = autotrain(hub, "home", run);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.err, HasSubstr("model org/tiny is not in the cache: downloading 1 files"));
  const auto adapter = nlohmann::json::parse(testing::read_file(work_.path() / "proj" / "adapter_config.json"));
  EXPECT_EQ(adapter["base_model_name_or_path"], "org/tiny");

  // Offline, from the cache alone (a batch job on a node without network).
  const size_t before = hub.requests().size();
  auto again = autotrain(hub, "home",
                         {"train", "-c", source_dir() + "/../configs/tiny.env", "--set", "MODEL_NAME=org/tiny", "--set",
                          "DATA_PATH=org/guanaco", "--set", "AUTOTRAIN_PROJECT_NAME=proj2", "--set",
                          "DATA_FILE=proj2-train.csv", "--max-steps", "2"},
                         {"HF_HUB_OFFLINE=1"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(hub.requests().size(), before);
}

TEST_F(HubTest, OfflineDownloadsNothingAndSaysHowToFetch) {
  FakeHub hub(root(), {});
  auto r = autotrain(hub, "home", {"eval", "--model", "org/tiny", "--data", "missing.jsonl"}, {"HF_HUB_OFFLINE=1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("HF_HUB_OFFLINE is set, so nothing is downloaded"));
  EXPECT_THAT(r.err, HasSubstr("autotrain download org/tiny"));
  EXPECT_TRUE(hub.requests().empty());
}

TEST_F(HubTest, ErrorsSayWhatIsWrongAndHowToFixIt) {
  FakeHub hub(root(), {});
  auto missing = autotrain(hub, "home", {"download", "org/nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("model org/nope: no such repository on " + hub.endpoint()));
  auto pickle = autotrain(hub, "home", {"download", "org/pickle"});
  EXPECT_EQ(pickle.exit_code, 1);
  EXPECT_THAT(pickle.err, HasSubstr("only as PyTorch pickles"));
  auto revision = autotrain(hub, "home", {"download", "org/tiny", "--revision", "v9"});
  EXPECT_EQ(revision.exit_code, 1);
  EXPECT_THAT(revision.err, HasSubstr("no such revision"));
  auto nothing = autotrain(hub, "home", {"download", "org/tiny", "--include", "*.gguf"});
  EXPECT_EQ(nothing.exit_code, 2);
  EXPECT_THAT(nothing.err, HasSubstr("--include '*' takes them all"));
  auto not_a_hub = testing::run_command({bin(), "download", "org/tiny"},
                                        clean_env({"HF_ENDPOINT=http://127.0.0.1:9", "HF_HOME=" + work_.path().string()}));
  EXPECT_EQ(not_a_hub.exit_code, 1);
  EXPECT_THAT(not_a_hub.err, HasSubstr("127.0.0.1:9"));
}

// A folder to upload: the tiny model's files, a nested file, an empty one, a link to a file,
// and a .git folder (never uploaded).
fs::path upload_folder_in(const fs::path& dir, const fs::path& model) {
  const fs::path f = dir / "to-upload";
  fs::create_directories(f / "sub");
  fs::create_directories(f / ".git");
  for (const auto& e : fs::directory_iterator(model)) fs::copy(e.path(), f / e.path().filename());
  std::ofstream(f / "sub" / "note.txt") << "a note\n";
  std::ofstream(f / "empty.txt");
  std::ofstream(f / ".git" / "HEAD") << "ref: refs/heads/main\n";
  fs::create_symlink("sub/note.txt", f / "alias.txt");  // goes up under its own name
  return f;
}

// What a commit left on the server: path -> (sha256, how it came: "file" or "lfsFile").
std::map<std::string, std::pair<std::string, std::string>> files_of(const nlohmann::json& repo) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (const auto& [path, f] : repo.at("files").items()) out[path] = {f.at("sha256"), f.at("kind")};
  return out;
}

TEST_F(HubTest, UploadCommitsWhatHuggingfaceHubsUploadFolderCommits) {
  const fs::path folder = upload_folder_in(work_.path(), root() / "models" / "org" / "tiny");
  // Each side to a hub of its own (LFS objects are kept per server), in parts of 600 kB.
  FakeHub ours_hub(root(), {"--multipart-chunk", "600000"}), their_hub(root(), {"--multipart-chunk", "600000"});
  const std::string token = std::string("HF_TOKEN=") + kToken;
  auto ours = autotrain(ours_hub, "home", {"upload", "fakeuser/lora", folder.string(), "--commit-message", "Upload it"},
                        {token});
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  auto theirs = python(their_hub, "home", {"upload", "fakeuser/lora", folder.string(), "Upload it"},
                       {token, "HF_HUB_DISABLE_XET=1"});
  ASSERT_EQ(theirs.exit_code, 0) << theirs.err;
  const auto a = ours_hub.state().at("fakeuser/lora"), b = their_hub.state().at("fakeuser/lora");
  EXPECT_EQ(a.at("create"), b.at("create"));  // {"name", "organization", "visibility": "private"}
  EXPECT_EQ(files_of(a), files_of(b));        // the same files, the same ones through LFS
  EXPECT_EQ(a.at("commits"), b.at("commits"));
  EXPECT_FALSE(files_of(a).count(".git/HEAD"));
  EXPECT_TRUE(files_of(a).count("alias.txt"));
  EXPECT_EQ(files_of(a).at("model.safetensors").second, "lfsFile");
  bool multipart = false;
  for (const auto& q : ours_hub.requests()) {
    multipart = multipart || q["path"].get<std::string>().find("/part/") != std::string::npos;
    if (q["server"] == "cdn") {
      EXPECT_EQ(q["auth"], "") << "the token went to the storage: " << q;
    }
  }
  EXPECT_TRUE(multipart);
  EXPECT_THAT(ours.err + ours.out, Not(HasSubstr(kToken)));

  // Again, unchanged: nothing is committed, by either.
  auto again = autotrain(ours_hub, "home", {"upload", "fakeuser/lora", folder.string(), "--json"}, {token});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["committed"], false);
  ASSERT_EQ(python(their_hub, "home", {"upload", "fakeuser/lora", folder.string(), "Again"}, {token, "HF_HUB_DISABLE_XET=1"})
                .exit_code,
            0);
  EXPECT_EQ(ours_hub.state().at("fakeuser/lora").at("commits").size(), 1u);
  EXPECT_EQ(their_hub.state().at("fakeuser/lora").at("commits").size(), 1u);
}

// --revision B commits to branch B, made from main when it is not there, as `hf upload
// --revision B` makes it; a second upload finds it.
TEST_F(HubTest, UploadToANewBranchMakesItAsHfUploadDoes) {
  const fs::path folder = upload_folder_in(work_.path(), root() / "models" / "org" / "tiny");
  FakeHub ours_hub(root(), {}), their_hub(root(), {});
  const std::string token = std::string("HF_TOKEN=") + kToken;
  auto ours = autotrain(ours_hub, "home",
                        {"upload", "fakeuser/lora", folder.string(), "--revision", "dev", "--commit-message", "On dev"},
                        {token});
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  EXPECT_THAT(ours.err, HasSubstr("created branch dev of fakeuser/lora"));
  auto theirs = python(their_hub, "home",
                       {"hf", "upload", "fakeuser/lora", folder.string(), "--revision", "dev", "--commit-message", "On dev",
                        "--private"},
                       {token, "HF_HUB_DISABLE_XET=1"});
  ASSERT_EQ(theirs.exit_code, 0) << theirs.err;
  const auto a = ours_hub.state().at("fakeuser/lora"), b = their_hub.state().at("fakeuser/lora");
  EXPECT_EQ(a.at("branches"), b.at("branches"));  // ["main", "dev"]
  EXPECT_EQ(a.at("branches"), nlohmann::json::parse(R"(["main", "dev"])"));
  EXPECT_EQ(a.at("commits"), b.at("commits"));  // one commit, on dev
  EXPECT_EQ(a.at("commits").at(0).at("revision"), "dev");
  EXPECT_EQ(files_of(a), files_of(b));
  // Again, with a change: the branch is there, so nothing is made; the commit goes to it.
  std::ofstream(folder / "sub" / "note.txt") << "another note\n";
  auto again = autotrain(ours_hub, "home", {"upload", "fakeuser/lora", folder.string(), "--revision", "dev"}, {token});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.err, Not(HasSubstr("created branch")));
  const auto after = ours_hub.state().at("fakeuser/lora");
  ASSERT_EQ(after.at("commits").size(), 2u);
  EXPECT_EQ(after.at("commits").at(1).at("revision"), "dev");
  EXPECT_EQ(after.at("branches").size(), 2u);
}

TEST_F(HubTest, UploadNeedsAValidTokenAndSaysSo) {
  FakeHub hub(root(), {});
  const fs::path folder = upload_folder_in(work_.path(), root() / "models" / "org" / "tiny");
  auto none = autotrain(hub, "home", {"upload", "fakeuser/x", folder.string()});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("autotrain setup --token"));
  auto offline = autotrain(hub, "home", {"upload", "fakeuser/x", folder.string()}, {"HF_HUB_OFFLINE=1"});
  EXPECT_EQ(offline.exit_code, 2);
  EXPECT_THAT(offline.err, HasSubstr("HF_HUB_OFFLINE is set"));
}

// `setup` asks the Hub whose the token is (a login node checks it before jobs are submitted).
TEST_F(HubTest, SetupSaysWhoseTheTokenIs) {
  FakeHub hub(root(), {});
  auto good = autotrain(hub, "home", {"setup", "--json"}, {std::string("HF_TOKEN=") + kToken});
  ASSERT_EQ(good.exit_code, 0) << good.err;
  const auto report = nlohmann::json::parse(good.out)["hub"];
  EXPECT_EQ(report["user"], "fakeuser");
  EXPECT_EQ(report["token_role"], "write");
  auto bad = autotrain(hub, "home", {"setup"}, {"HF_TOKEN=hf_NotTheRightToken0000000"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("token is not valid"));
  auto offline = autotrain(hub, "home", {"setup", "--json"}, {std::string("HF_TOKEN=") + kToken, "HF_HUB_OFFLINE=1"});
  EXPECT_EQ(offline.exit_code, 0) << offline.err;
  EXPECT_EQ(nlohmann::json::parse(offline.out)["hub"]["offline"], true);
  for (const auto* r : {&good, &bad, &offline}) EXPECT_THAT(r->out + r->err, Not(HasSubstr(kToken)));
}

// PUSH_TO_HUB=True: the token is checked before training; the project goes to REPO_ID after it,
// without the token cache and the checkpoints, and without the token anywhere.
TEST_F(HubTest, TrainPushesTheProjectToRepoId) {
  FakeHub hub(root(), {});
  const std::vector<std::string> run = {"train", "-c", source_dir() + "/../configs/tiny.env", "--set",
                                        "MODEL_NAME=" + (root() / "models" / "org" / "tiny").string(), "--set",
                                        "DATA_PATH=" + (root() / "datasets" / "org" / "guanaco").string(), "--set",
                                        "AUTOTRAIN_PROJECT_NAME=proj", "--set", "DATA_FILE=proj-train.csv", "--set",
                                        "PUSH_TO_HUB=True", "--set", "REPO_ID=fakeuser/tiny-lora", "--set",
                                        "SAVE_STRATEGY=steps", "--set", "SAVE_STEPS=1", "--max-steps", "2"};
  std::vector<std::string> bad_id = run;
  bad_id.insert(bad_id.end() - 2, {"--set", "REPO_ID=fakeuser/bad name"});
  auto not_an_id = autotrain(hub, "home", bad_id, {std::string("HF_TOKEN=") + kToken});
  EXPECT_EQ(not_an_id.exit_code, 2) << not_an_id.err;
  EXPECT_THAT(not_an_id.err, HasSubstr("REPO_ID 'fakeuser/bad name' is not a repository id"));
  auto bad = autotrain(hub, "home", run, {"HF_TOKEN=hf_NotTheRightToken0000000"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("token is not valid"));
  // A Hub out of reach is the machine's condition, not the config's: exit 1, still before training.
  auto unreachable = autotrain(hub, "home", run, {std::string("HF_TOKEN=") + kToken, "HF_ENDPOINT=http://127.0.0.1:9"});
  EXPECT_EQ(unreachable.exit_code, 1) << unreachable.err;
  EXPECT_THAT(unreachable.err, HasSubstr("the Hub cannot be reached"));
  EXPECT_THAT(unreachable.err, Not(HasSubstr(kToken)));
  EXPECT_FALSE(fs::exists(work_.path() / "proj" / "adapter_model.safetensors")) << "refused before training";

  auto r = autotrain(hub, "home", run, {std::string("HF_TOKEN=") + kToken});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("pushed: " + hub.endpoint() + "/fakeuser/tiny-lora/commit/"));
  ASSERT_TRUE(fs::exists(work_.path() / "proj" / "checkpoint-2"));
  const auto repo = hub.state().at("fakeuser/tiny-lora");
  EXPECT_EQ(repo.at("create").at("visibility"), "private");
  const auto files = files_of(repo);
  for (const char* f : {"adapter_model.safetensors", "adapter_config.json", "README.md", "training_params.json",
                        "tokenizer.json", "metrics.jsonl"})
    EXPECT_TRUE(files.count(f)) << f;
  for (const auto& [path, kind] : files) {
    EXPECT_NE(path.rfind("checkpoint-", 0), 0u) << path;
    EXPECT_NE(path.rfind("autotrain-data/", 0), 0u) << path;
    EXPECT_THAT(repo.at("files").at(path).at("text").get<std::string>(), Not(HasSubstr(kToken))) << path;
  }
  EXPECT_EQ(files.at("adapter_model.safetensors").first,
            data_sha256(work_.path() / "proj" / "adapter_model.safetensors"));
  EXPECT_THAT(r.err + r.out, Not(HasSubstr(kToken)));
}

}  // namespace
}  // namespace autotrain
