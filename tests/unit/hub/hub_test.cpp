// The pieces of the hub downloader that need no server: file selection (fnmatch's rules, as
// huggingface_hub's allow_patterns), URLs, cache names, options from the environment.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "autotrain/hub/hub.h"
#include "support/test_support.h"

namespace autotrain::hub {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

model::EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

TEST(Glob, FollowsFnmatchWhereStarAlsoCrossesFolders) {
  EXPECT_TRUE(glob_match("*.json", "config.json"));
  EXPECT_TRUE(glob_match("*.json", "onnx/config.json"));  // fnmatch's '*' matches '/'
  EXPECT_FALSE(glob_match("*.json", "config.json.bak"));
  EXPECT_TRUE(glob_match("model-\?\?\?\?\?-of-\?\?\?\?\?.safetensors", "model-00001-of-00002.safetensors"));
  EXPECT_FALSE(glob_match("model-?.bin", "model-10.bin"));
  EXPECT_TRUE(glob_match("[mt]*", "tokenizer.json"));
  EXPECT_FALSE(glob_match("[!mt]*", "tokenizer.json"));
  EXPECT_TRUE(glob_match("data/*-[0-9]*.parquet", "data/train-00000-of-00001.parquet"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_FALSE(glob_match("a", ""));
  EXPECT_TRUE(glob_match("a*b*c", "axxbyyc"));
  EXPECT_FALSE(glob_match("a*b*c", "axxbyy"));
  EXPECT_TRUE(glob_match("[", "["));  // an unclosed class is a literal '['
  EXPECT_TRUE(glob_match("[^b]x", "bx"));  // '^' negates nothing in fnmatch: it is a member
}

RepoListing listing(std::vector<std::string> paths) {
  RepoListing l;
  l.repo_id = "org/name";
  l.commit = std::string(40, 'a');
  for (auto& p : paths) l.files.push_back({p, 10, "b", std::nullopt});
  return l;
}

TEST(SelectFiles, KeepsListingOrderAndTakesWholeFoldersForATrailingSlash) {
  auto l = listing({"README.md", "data/train.jsonl", "data/test.jsonl", "config.json"});
  EXPECT_THAT(select_files(l, {"data/"}), ElementsAre("data/train.jsonl", "data/test.jsonl"));
  EXPECT_THAT(select_files(l, {"*.json", "*.md"}), ElementsAre("README.md", "config.json"));
}

TEST(FilesToFetch, TakesAModelsTopLevelWeightsConfigsAndTokenizer) {
  auto l = listing({".gitattributes", "README.md", "config.json", "consolidated.safetensors", "generation_config.json",
                    "model-00001-of-00002.safetensors",
                    "model-00002-of-00002.safetensors", "model.safetensors.index.json", "onnx/model.safetensors",
                    "pytorch_model-00001-of-00002.bin", "tokenizer.json", "tokenizer_config.json"});
  EXPECT_THAT(files_to_fetch(l, Use::model),
              ElementsAre("config.json", "generation_config.json", "model-00001-of-00002.safetensors",
                          "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json",
                          "tokenizer_config.json"));
  EXPECT_THAT(files_to_fetch(l, Use::tokenizer), ElementsAre("tokenizer.json", "tokenizer_config.json"));
}

TEST(FilesToFetch, RefusesPickleOnlyModelsAndDatasetsWithoutDataFiles) {
  try {
    files_to_fetch(listing({"config.json", "pytorch_model.bin"}), Use::model);
    FAIL();
  } catch (const HubError& e) {
    EXPECT_THAT(e.what(), HasSubstr("only as PyTorch pickles"));
  }
  try {
    files_to_fetch(listing({"config.json", "consolidated.safetensors"}), Use::model);
    FAIL();
  } catch (const HubError& e) {
    EXPECT_THAT(e.what(), HasSubstr("has no model.safetensors"));
  }
  EXPECT_THAT(files_to_fetch(listing({"model.safetensors", "config.json", "model.fp16.safetensors"}), Use::model),
              ElementsAre("model.safetensors", "config.json"));
  auto l = listing({"README.md", ".gitattributes"});
  l.type = RepoType::dataset;
  try {
    files_to_fetch(l, Use::dataset);
    FAIL();
  } catch (const HubError& e) {
    EXPECT_THAT(e.what(), HasSubstr("(it has: README.md, .gitattributes)"));
  }
  l = listing({"README.md", "data/train-00000-of-00001.parquet", "openassistant_best_replies_eval.jsonl"});
  EXPECT_THAT(files_to_fetch(l, Use::dataset),
              ElementsAre("data/train-00000-of-00001.parquet", "openassistant_best_replies_eval.jsonl"));
}

TEST(Urls, QuoteAndOrigin) {
  EXPECT_EQ(url_quote("refs/pr/1", false), "refs%2Fpr%2F1");
  EXPECT_EQ(url_quote("data/my file+1.csv", true), "data/my%20file%2B1.csv");
  EXPECT_EQ(url_origin("HTTPS://Huggingface.co:443/api/x?y=1"), "https://huggingface.co:443");
  EXPECT_EQ(url_origin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
}

TEST(Options, EndpointCacheAndTokenAsHuggingfaceHubFindsThem) {
  testing::TempDir home;
  auto o = options_from_env(fake_env({{"HF_HOME", home.path().string()}, {"HF_ENDPOINT", "https://hf-mirror.com/"}}));
  EXPECT_EQ(o.endpoint, "https://hf-mirror.com");
  EXPECT_EQ(o.cache, home.path() / "hub");
  EXPECT_FALSE(o.token);
  home.write("token", "hf_fromthefile123\n");
  EXPECT_EQ(options_from_env(fake_env({{"HF_HOME", home.path().string()}})).token, "hf_fromthefile123");
  EXPECT_EQ(options_from_env(fake_env({{"HF_HOME", home.path().string()}, {"HF_TOKEN", "hf_fromenv456"}})).token,
            "hf_fromenv456");
  // The config's HF_TOKEN wins; the tutorial's placeholder counts as none.
  EXPECT_EQ(options_from_env(fake_env({{"HF_TOKEN", "hf_fromenv456"}}), std::string("hf_config789")).token, "hf_config789");
  EXPECT_EQ(options_from_env(fake_env({{"HF_HOME", home.path().string()}, {"HF_TOKEN", "hf_XXX"}})).token,
            "hf_fromthefile123");
}

TEST(Options, OfflineTakesHuggingfaceHubsTrueValues) {
  for (const char* v : {"1", "ON", "yes", "True"}) EXPECT_TRUE(offline(fake_env({{"HF_HUB_OFFLINE", v}}))) << v;
  for (const char* v : {"0", "false", "no", ""}) EXPECT_FALSE(offline(fake_env({{"HF_HUB_OFFLINE", v}}))) << v;
  EXPECT_TRUE(offline(fake_env({{"TRANSFORMERS_OFFLINE", "1"}})));
  EXPECT_FALSE(offline(fake_env({{"HF_HUB_OFFLINE", "0"}, {"TRANSFORMERS_OFFLINE", "1"}})));
}

}  // namespace
}  // namespace autotrain::hub
