// config.json in both spellings (checked against the real Falcon configs in shared/data) and
// model folder resolution (local, Hugging Face cache). No LibTorch.
#include <fstream>
#include <map>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "autotrain/model/falcon_config.h"
#include "autotrain/model/model_dir.h"
#include "support/test_support.h"

namespace autotrain::model {
namespace {

using autotrain::testing::TempDir;
using autotrain::testing::env_var;
using autotrain::testing::run_command;
using ::testing::HasSubstr;

std::filesystem::path shared_data() {
  auto dir = autotrain::testing::env_var("AUTOTRAIN_SHARED_DIR");
  return std::filesystem::path(dir.value_or(std::string(AUTOTRAIN_TEST_SOURCE_DIR) + "/../../shared")) / "data";
}

std::string error_of(const nlohmann::json& j) {
  try {
    FalconConfig::from_json(j, "config.json");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

// The real configs live in ../shared beside the checkout (test data, never read by the product).
#define SKIP_WITHOUT_SHARED()                                                                         \
  if (!std::filesystem::exists(shared_data() / "falcon-7b" / "config.json"))                        \
  GTEST_SKIP() << "no shared reference data at " << shared_data() << " (../shared beside the checkout)"

TEST(FalconConfig, Falcon7bInLibraryAndLegacySpellingsAgree) {
  SKIP_WITHOUT_SHARED();
  auto lib = FalconConfig::load(shared_data() / "falcon-7b" / "config.json");
  auto rw = FalconConfig::load(shared_data() / "falcon-7b" / "config.legacy-RW.json");
  for (const auto* c : {&lib, &rw}) {
    EXPECT_EQ(c->hidden_size, 4544);
    EXPECT_EQ(c->num_attention_heads, 71);
    EXPECT_EQ(c->num_hidden_layers, 32);
    EXPECT_EQ(c->kv_heads(), 1);
    EXPECT_EQ(c->qkv_out_features(), 4672);
    EXPECT_FALSE(c->new_decoder_architecture);
    EXPECT_TRUE(c->parallel_attn);
    EXPECT_FALSE(c->two_layer_norms());
    EXPECT_EQ(c->ffn_hidden_size, 18176);
    EXPECT_EQ(c->vocab_size, 65024);
    EXPECT_EQ(c->head_dim(), 64);
    EXPECT_EQ(c->bos_token_id, 11);
  }
  EXPECT_EQ(rw.model_type, "RefinedWebModel");
}

TEST(FalconConfig, Falcon40bAndRw1b) {
  SKIP_WITHOUT_SHARED();
  auto c40 = FalconConfig::load(shared_data() / "falcon-40b" / "config.json");
  EXPECT_TRUE(c40.new_decoder_architecture);
  EXPECT_TRUE(c40.two_layer_norms());
  EXPECT_EQ(c40.kv_heads(), 8);
  EXPECT_EQ(c40.qkv_out_features(), 9216);
  EXPECT_EQ(c40.ffn_hidden_size, 32768);
  auto c1 = FalconConfig::load(shared_data() / "falcon-rw-1b" / "config.json");
  EXPECT_TRUE(c1.alibi);
  EXPECT_TRUE(c1.bias);
  EXPECT_FALSE(c1.parallel_attn);
  EXPECT_EQ(c1.kv_heads(), 32);
  EXPECT_EQ(c1.qkv_out_features(), 3 * 2048);
  EXPECT_EQ(c1.ffn_hidden_size, 8192);
  EXPECT_EQ(c1.eos_token_id, 2);
}

TEST(FalconConfig, LegacyRefinedWebMeansTheNewDecoder) {
  auto c = FalconConfig::from_json(
      {{"model_type", "RefinedWeb"}, {"n_head", 128}, {"n_head_kv", 8}, {"n_layer", 60}, {"hidden_size", 8192}},
      "config.json");
  EXPECT_TRUE(c.new_decoder_architecture);
  EXPECT_EQ(c.num_attention_heads, 128);
  EXPECT_EQ(c.num_hidden_layers, 60);
  EXPECT_EQ(c.kv_heads(), 8);
  EXPECT_EQ(c.qkv_out_features(), 9216);
  auto rope = FalconConfig::from_json({{"model_type", "falcon"}, {"hidden_size", 64}, {"num_attention_heads", 4},
                                       {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 500.0}}}},
                                      "config.json");
  EXPECT_EQ(rope.rope_theta, 500.0);
  // transformers: rope_parameters win over a top-level rope_theta, which is only a fallback.
  auto both = FalconConfig::from_json({{"model_type", "falcon"}, {"hidden_size", 64}, {"num_attention_heads", 4},
                                       {"rope_theta", 10000.0},
                                       {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 500.0}}}},
                                      "config.json");
  EXPECT_EQ(both.rope_theta, 500.0);
  auto dropout = FalconConfig::from_json({{"model_type", "falcon"}, {"hidden_size", 64}, {"num_attention_heads", 4},
                                          {"hidden_dropout", 0.1}, {"attention_dropout", 0.0}},
                                         "config.json");
  EXPECT_EQ(dropout.hidden_dropout, 0.1);
  EXPECT_EQ(dropout.attention_dropout, 0.0);
}

TEST(FalconConfig, ClearErrors) {
  EXPECT_THAT(error_of({{"model_type", "llama"}, {"architectures", {"LlamaForCausalLM"}}}),
              HasSubstr("config.json: model_type \"llama\" (architectures [\"LlamaForCausalLM\"]) is not supported"));
  EXPECT_THAT(error_of({{"hidden_size", 64}}), HasSubstr("no \"model_type\""));
  EXPECT_THAT(error_of({{"model_type", "falcon"}, {"hidden_size", 65}, {"num_attention_heads", 4}}),
              HasSubstr("hidden_size 65 is not a multiple of num_attention_heads 4"));
  EXPECT_THAT(error_of({{"model_type", "falcon"}, {"hidden_size", "64"}}),
              HasSubstr("\"hidden_size\" must be a positive integer, got \"64\""));
  EXPECT_THAT(error_of({{"model_type", "falcon"}, {"activation", "relu"}}), HasSubstr("\"activation\" \"relu\""));
  EXPECT_THAT(error_of({{"model_type", "falcon"}, {"hidden_dropout", 1.5}}), HasSubstr("\"hidden_dropout\" must be a probability"));
  EXPECT_THAT(error_of({{"model_type", "falcon"}, {"rope_parameters", {{"type", "linear"}, {"factor", 2.0}}}}),
              HasSubstr("rope_parameters type \"linear\" is not supported"));
  EXPECT_THAT(error_of({{"model_type", "falcon"}, {"rope_scaling", {{"type", "linear"}}}}),
              HasSubstr("\"rope_scaling\""));
  EXPECT_THAT(error_of({{"model_type", "falcon"}, {"new_decoder_architecture", true}, {"num_attention_heads", 71},
                        {"num_kv_heads", 8}}),
              HasSubstr("not a multiple of num_kv_heads 8"));
  EXPECT_THAT(error_of({{"model_type", "falcon"}, {"multi_query", false}, {"num_attention_heads", 71},
                        {"num_kv_heads", 8}}),
              HasSubstr("needs num_kv_heads == num_attention_heads"));
  EXPECT_THAT(error_of(nlohmann::json::array()), HasSubstr("expected a JSON object"));
  // A config.json damaged after a NUL byte is refused (the JSON library alone reads up to it).
  {
    TempDir dir;
    std::ofstream(dir.path() / "config.json", std::ios::binary)
        << std::string("{\"model_type\": \"falcon\"}") + std::string(2, '\0') + "garbage";
    try {
      FalconConfig::load(dir.path() / "config.json");
      ADD_FAILURE() << "a config.json with a NUL byte loaded";
    } catch (const ModelError& e) {
      EXPECT_THAT(e.what(), HasSubstr("not valid JSON: parse error at line 1, column 25: a NUL byte"));
    }
  }
  try {
    FalconConfig::load("/nonexistent/config.json");
    ADD_FAILURE();
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/config.json: cannot read"));
  }
}

EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

void make_snapshot(const std::filesystem::path& hub, const std::string& folder, const std::string& commit) {
  auto repo = hub / folder;
  std::filesystem::create_directories(repo / "refs");
  std::filesystem::create_directories(repo / "snapshots" / commit);
  std::ofstream(repo / "refs" / "main") << commit << "\n";
  std::ofstream(repo / "snapshots" / commit / "config.json") << "{}";
}

TEST(ModelDir, HubCacheLocation) {
  EXPECT_EQ(hf_hub_cache(fake_env({{"HF_HUB_CACHE", "/c"}, {"HF_HOME", "/h"}})), "/c");
  EXPECT_EQ(hf_hub_cache(fake_env({{"HF_HOME", "/h"}})), "/h/hub");
  EXPECT_EQ(hf_hub_cache(fake_env({{"XDG_CACHE_HOME", "/x"}, {"HOME", "/home/u"}})), "/x/huggingface/hub");
  EXPECT_EQ(hf_hub_cache(fake_env({{"HOME", "/home/u"}})), "/home/u/.cache/huggingface/hub");
}

TEST(ModelDir, HubCacheFolderAndSnapshotAsHuggingfaceHubNamesThem) {
  EXPECT_EQ(hub_repo_folder("tiiuae/falcon-7b", RepoType::model), "models--tiiuae--falcon-7b");
  EXPECT_EQ(hub_repo_folder("timdettmers/openassistant-guanaco", RepoType::dataset),
            "datasets--timdettmers--openassistant-guanaco");
  EXPECT_EQ(hub_repo_folder("gpt2", RepoType::model), "models--gpt2");

  TempDir tmp;
  const auto repo = tmp.path() / "models--org--m";
  EXPECT_TRUE(hub_snapshot_path(repo).empty()) << "no refs/main";
  const std::string commit(40, 'a');
  EXPECT_EQ(hub_snapshot_path(repo, commit), repo / "snapshots" / commit) << "a commit needs no ref";
  // huggingface_hub keeps revision R's commit in refs/R, so a pull request's is refs/refs/pr/1.
  std::filesystem::create_directories(repo / "refs" / "refs" / "pr");
  std::ofstream(repo / "refs" / "main") << "c0ffee";  // as huggingface_hub writes it: no newline
  std::ofstream(repo / "refs" / "refs" / "pr" / "1") << "beef\n";
  EXPECT_EQ(hub_snapshot_path(repo), repo / "snapshots" / "c0ffee");
  EXPECT_EQ(hub_snapshot_path(repo, "refs/pr/1"), repo / "snapshots" / "beef");
  EXPECT_TRUE(hub_snapshot_path(repo, "v1").empty()) << "no such tag";
  for (const char* bad : {"", "../../etc", ".."}) {
    std::ofstream(repo / "refs" / "main", std::ios::trunc) << bad;
    EXPECT_TRUE(hub_snapshot_path(repo).empty()) << "refs/main holding '" << bad << "' names no snapshot";
  }
}

// huggingface_hub applies os.path.expanduser to each variable: a quoted '~' still means $HOME.
TEST(ModelDir, HubCacheExpandsALeadingTilde) {
  EXPECT_EQ(hf_hub_cache(fake_env({{"HF_HOME", "~/hfx"}, {"HOME", "/home/u"}})), "/home/u/hfx/hub");
  // Then variables (os.path.expandvars), as huggingface_hub.
  EXPECT_EQ(hf_hub_cache(fake_env({{"HF_HOME", "$SCRATCH/hf"}, {"SCRATCH", "/s"}})), "/s/hf/hub");
  EXPECT_EQ(hf_hub_cache(fake_env({{"HF_HOME", "~"}, {"HOME", "/home/u/"}})), "/home/u/hub");
  EXPECT_EQ(hf_hub_cache(fake_env({{"HF_HUB_CACHE", "~/c"}, {"HOME", "/home/u"}})), "/home/u/c");
  EXPECT_EQ(hf_hub_cache(fake_env({{"XDG_CACHE_HOME", "~/x"}, {"HOME", "/home/u"}})), "/home/u/x/huggingface/hub");
  EXPECT_EQ(hf_hub_cache(fake_env({{"HF_HOME", "a/~/b"}, {"HOME", "/home/u"}})), "a/~/b/hub");
  EXPECT_EQ(hf_hub_cache(fake_env({{"HF_HOME", "~no-such-user-here/x"}, {"HOME", "/home/u"}})), "~no-such-user-here/x/hub");
}

// Where huggingface_hub itself puts its cache (what `huggingface-cli download` fills) for the
// same environment: the reference stack's constants.HF_HUB_CACHE, run at test time.
TEST(ModelDir, HubCacheIsWhereHuggingfaceHubPutsIt) {
  auto python = env_var("AUTOTRAIN_PYTHON");
  if (!python) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set (run through CTest)";
  const std::vector<std::map<std::string, std::string>> cases = {
      {{"HOME", "/home/u"}},
      {{"HOME", "/home/u"}, {"HF_HOME", "/h"}},
      {{"HOME", "/home/u"}, {"HF_HOME", "~/h"}, {"XDG_CACHE_HOME", "/x"}},
      {{"HOME", "/home/u"}, {"XDG_CACHE_HOME", "/x"}},
      {{"HOME", "/home/u"}, {"HF_HUB_CACHE", "/c"}, {"HF_HOME", "/h"}},
      {{"HOME", "/home/u"}, {"HUGGINGFACE_HUB_CACHE", "/old"}, {"HF_HOME", "/h"}},
      {{"HOME", "/home/u"}, {"HUGGINGFACE_HUB_CACHE", "/old"}, {"HF_HUB_CACHE", "/c"}},
      {{"HOME", "/home/u"}, {"HUGGINGFACE_HUB_CACHE", "~/old"}},
      {{"HOME", "/home/u"}, {"HF_HUB_CACHE", "$SCRATCH/c"}, {"SCRATCH", "/s"}},
  };
  for (const auto& vars : cases) {
    std::vector<std::string> env;
    std::string described;
    for (const auto& [k, v] : vars) {
      env.push_back(k + "=" + v);
      described += k + "=" + v + " ";
    }
    auto r = run_command({*python, "-c", "import huggingface_hub.constants as c; print(c.HF_HUB_CACHE)"}, env);
    ASSERT_EQ(r.exit_code, 0) << described << r.err;
    while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
    EXPECT_EQ(std::filesystem::path(hf_hub_cache(fake_env(vars))).lexically_normal(),
              std::filesystem::path(r.out).lexically_normal())
        << described;
  }
}

TEST(ModelDir, LocalFolderFirstThenCache) {
  TempDir tmp;
  auto hub = tmp.path() / "home" / "hub";
  make_snapshot(hub, "models--tiiuae--falcon-7b", "abc123");
  make_snapshot(hub, "models--tiiuae--falcon-7b", "old999");  // another snapshot; refs/main decides
  std::ofstream(hub / "models--tiiuae--falcon-7b" / "refs" / "main") << "abc123\n";
  auto env = fake_env({{"HF_HOME", (tmp.path() / "home").string()}});
  ModelDir d = resolve_model_dir("tiiuae/falcon-7b", env);
  EXPECT_EQ(d.path, hub / "models--tiiuae--falcon-7b" / "snapshots" / "abc123");
  EXPECT_EQ(d.source, "Hugging Face cache");
  // HF_HUB_CACHE wins over HF_HOME.
  auto other = tmp.path() / "other";
  make_snapshot(other, "models--tiiuae--falcon-7b", "fff");
  d = resolve_model_dir("tiiuae/falcon-7b", fake_env({{"HF_HOME", (tmp.path() / "home").string()},
                                                       {"HF_HUB_CACHE", other.string()}}));
  EXPECT_EQ(d.path, other / "models--tiiuae--falcon-7b" / "snapshots" / "fff");
  // A local folder of that name comes first.
  auto local = tmp.path() / "local";
  std::filesystem::create_directories(local);
  std::ofstream(local / "config.json") << "{}";
  d = resolve_model_dir(local.string(), env);
  EXPECT_EQ(d.path, local);
  EXPECT_EQ(d.source, "local folder");
}

// `tokenize --tokenizer org/name` on a tokenizer-only repository: no config.json, a tokenizer.json.
TEST(ModelDir, CacheSnapshotWithOnlyATokenizer) {
  TempDir tmp;
  auto hub = tmp.path() / "hub";
  auto snapshot = hub / "models--org--tok" / "snapshots" / "c0ffee";
  std::filesystem::create_directories(snapshot);
  std::filesystem::create_directories(hub / "models--org--tok" / "refs");
  std::ofstream(hub / "models--org--tok" / "refs" / "main") << "c0ffee\n";
  std::ofstream(snapshot / "tokenizer.json") << "{}";
  auto env = fake_env({{"HF_HUB_CACHE", hub.string()}});
  try {
    resolve_model_dir("org/tok", env);
    ADD_FAILURE() << "a model needs config.json";
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("which has no config.json"));
  }
  EXPECT_EQ(resolve_model_dir("org/tok", env, {"tokenizer.json", "tokenizer.model"}).path, snapshot);
}

TEST(ModelDir, ErrorsListWhereWeLooked) {
  TempDir tmp;
  auto env = fake_env({{"HF_HUB_CACHE", (tmp.path() / "hub").string()}});
  try {
    resolve_model_dir("tiiuae/falcon-40b", env);
    ADD_FAILURE();
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("model 'tiiuae/falcon-40b' not found"));
    EXPECT_THAT(e.what(), HasSubstr("local folder tiiuae/falcon-40b (does not exist)"));
    EXPECT_THAT(e.what(), HasSubstr((tmp.path() / "hub" / "models--tiiuae--falcon-40b").string() + " (not downloaded)"));
    EXPECT_THAT(e.what(), HasSubstr("autotrain download tiiuae/falcon-40b"));
  }
  // A path (the tiny default's ./runs/tiny-falcon in a fresh clone) is not downloaded: it is made.
  try {
    resolve_model_dir("./runs/tiny-falcon", env);
    ADD_FAILURE();
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("autotrain tiny -c configs/tiny.env"));
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("autotrain download")));
  }
  // "./nope" and ".hidden/x" fit the id alphabet, but no hub id starts a part with '.' or '-':
  // paths, not looked up in the cache.
  for (const char* path : {"./nope", ".hidden/x", "org/-name"}) {
    try {
      resolve_model_dir(path, env);
      ADD_FAILURE() << path;
    } catch (const ModelError& e) {
      EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("Hugging Face cache"))) << path;
      EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("autotrain download"))) << path;
    }
  }
  std::filesystem::create_directories(tmp.path() / "hub" / "models--a--b" / "snapshots");
  try {
    resolve_model_dir("a/b", env);
    ADD_FAILURE();
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no refs/main"));
  }
  auto empty = tmp.path() / "empty";
  std::filesystem::create_directories(empty);
  try {
    resolve_model_dir(empty.string(), env);
    ADD_FAILURE();
  } catch (const ModelError& e) {
    EXPECT_THAT(e.what(), HasSubstr("the folder has no config.json"));
  }
}

// A snapshot's files are links into blobs/: one whose blob is gone (an interrupted download) is
// named as such, in a local folder and in the cache, rather than called missing.
TEST(ModelDir, LinkToAMissingBlobIsNamed) {
  TempDir tmp;
  auto hub = tmp.path() / "hub";
  auto snapshot = hub / "models--org--m" / "snapshots" / "c0ffee";
  std::filesystem::create_directories(snapshot);
  std::filesystem::create_directories(hub / "models--org--m" / "refs");
  std::ofstream(hub / "models--org--m" / "refs" / "main") << "c0ffee\n";
  const auto blob = hub / "models--org--m" / "blobs" / "5e1f";
  std::filesystem::create_symlink(blob, snapshot / "config.json");
  auto env = fake_env({{"HF_HUB_CACHE", hub.string()}});
  for (const std::string& name : {std::string("org/m"), snapshot.string()}) {
    try {
      resolve_model_dir(name, env);
      ADD_FAILURE() << name;
    } catch (const ModelError& e) {
      EXPECT_THAT(e.what(), HasSubstr("config.json is a link to " + blob.string() +
                                      ", which does not exist: the download is incomplete"))
          << name;
    }
  }
}

}  // namespace
}  // namespace autotrain::model
