// Loading tokenizer.json files: a small complete pipeline, and a clear error (file, JSON path,
// hint) for everything unsupported or malformed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include "autotrain/tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace autotrain::tokenizer {
namespace {

using nlohmann::json;
using testing::ScratchDir;
using testing::write_file;

json minimal() {
  return json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null,
    "added_tokens": [
      {"id": 0, "content": "<s>", "special": true, "lstrip": false, "rstrip": false, "single_word": false, "normalized": false},
      {"id": 1, "content": "</s>", "special": true, "lstrip": false, "rstrip": false, "single_word": false, "normalized": false}
    ],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}]},
    "pre_tokenizer": {"type": "Whitespace"},
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "</s>", "type_id": 0}}],
      "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                                     "</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}},
    "decoder": {"type": "BPEDecoder", "suffix": "</w>"},
    "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
              "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false,
              "vocab": {"<s>": 0, "</s>": 1, "<unk>": 2, "h": 3, "i": 4, "i</w>": 5, "hi</w>": 6, "!</w>": 7},
              "merges": ["h i</w>"]}
  })");
}

std::unique_ptr<Tokenizer> load_json(const ScratchDir& dir, const json& j) {
  write_file(dir.path() / "tokenizer.json", j.dump());
  return load_tokenizer(dir.path());
}

// The error message of loading `j`, or "" when it loads.
std::string load_error(const json& j) {
  ScratchDir dir;
  try {
    load_json(dir, j);
  } catch (const TokenizerError& e) {
    return e.what();
  }
  return "";
}

TEST(Loader, MinimalPipelineWithTemplate) {
  ScratchDir dir;
  auto t = load_json(dir, minimal());
  // NFKC maps the fullwidth "Ｈ" to "H", Lowercase to "h"; "hi</w>" is one token; "!" alone.
  EXPECT_EQ(t->encode("Ｈi !", false), (std::vector<TokenId>{6, 7}));
  EXPECT_EQ(t->encode("Ｈi !"), (std::vector<TokenId>{0, 6, 7, 1}));
  EXPECT_EQ(t->encode("hx"), (std::vector<TokenId>{0, 3, 2, 1})) << "x is unknown: <unk>";
  EXPECT_EQ(t->decode(std::vector<TokenId>{0, 6, 7, 1}, true), "hi !");
  EXPECT_EQ(t->vocab_size(), 8u);
  EXPECT_FALSE(t->special_ids().eos.has_value()) << "no tokenizer_config.json";
}

TEST(Loader, SpecialTokensFromTokenizerConfig) {
  ScratchDir dir;
  write_file(dir.path() / "tokenizer_config.json", R"({"eos_token": {"content": "</s>"}, "bos_token": "<s>"})");
  auto t = load_json(dir, minimal());
  EXPECT_EQ(t->special_ids().bos, 0);
  EXPECT_EQ(t->special_ids().eos, 1);
  EXPECT_EQ(t->special_ids().pad, 1);
  std::string h1 = t->content_hash();
  write_file(dir.path() / "tokenizer_config.json", R"({"eos_token": "</s>", "pad_token": "<unk>"})");
  auto t2 = load_tokenizer(dir.path());
  EXPECT_EQ(t2->special_ids().pad, 2);
  EXPECT_NE(t2->content_hash(), h1) << "a changed special-token config must change the hash";
  EXPECT_EQ(load_tokenizer(dir.path())->content_hash(), t2->content_hash()) << "the hash must be stable";
  write_file(dir.path() / "tokenizer_config.json", R"({"eos_token": "<nope>"})");
  EXPECT_THROW(load_tokenizer(dir.path()), TokenizerError);
}

struct BadCase {
  const char* name;
  std::function<void(json&)> edit;
  const char* expected;  // substring of the message
};

TEST(Loader, UnsupportedOrMalformedIsAClearError) {
  std::vector<BadCase> cases = {
      {"model type", [](json& j) { j["model"]["type"] = "WordPiece"; }, "model.type: model 'WordPiece' is not supported"},
      {"dropout", [](json& j) { j["model"]["dropout"] = 0.1; }, "model.dropout: dropout 0.1 is not supported"},
      {"normalizer", [](json& j) { j["normalizer"]["normalizers"][1] = {{"type", "BertNormalizer"}}; },
       "normalizer.normalizers[1].type: normalizer 'BertNormalizer' is not supported"},
      {"pre-tokenizer", [](json& j) { j["pre_tokenizer"] = {{"type", "UnicodeScripts"}}; },
       "pre_tokenizer.type: pre-tokenizer 'UnicodeScripts' is not supported"},
      {"decoder", [](json& j) { j["decoder"] = {{"type", "CTC"}}; }, "decoder.type: decoder 'CTC' is not supported"},
      {"post-processor", [](json& j) { j["post_processor"] = {{"type", "Foo"}}; }, "post-processor 'Foo' is not supported"},
      {"bad regex",
       [](json& j) { j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(("}}}, {"behavior", "Isolated"}}; },
       "pre_tokenizer.pattern: invalid regex '(('"},
      {"bad behavior",
       [](json& j) { j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", "x"}}}, {"behavior", "Sideways"}}; },
       "pre_tokenizer.behavior: unknown behavior"},
      {"merge outside vocab", [](json& j) { j["model"]["merges"] = {"h zz"}; }, "model: merge 0 'h zz' uses a token"},
      {"malformed merge", [](json& j) { j["model"]["merges"] = {"h i j"}; }, "model.merges[0]"},
      {"unk outside vocab", [](json& j) { j["model"]["unk_token"] = "[UNK]"; }, "unk_token '[UNK]' is not in the vocabulary"},
      {"template token", [](json& j) { j["post_processor"]["single"][0]["SpecialToken"]["id"] = "<x>"; },
       "special token '<x>' is not in special_tokens"},
      {"no model", [](json& j) { j.erase("model"); }, "model: missing"},
      {"added token id", [](json& j) { j["added_tokens"][0]["id"] = -3; }, "added_tokens[0].id"},
  };
  for (const auto& c : cases) {
    json j = minimal();
    c.edit(j);
    std::string msg = load_error(j);
    EXPECT_NE(msg.find(c.expected), std::string::npos) << c.name << ": got '" << msg << "'";
    EXPECT_NE(msg.find("tokenizer.json"), std::string::npos) << c.name << ": the file must be named: " << msg;
  }
}

TEST(Batch, SameAsSequentialAndWorksAfterFork) {
  ScratchDir dir;
  auto t = load_json(dir, minimal());
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i) texts.push_back(std::string(i % 5, 'h') + " hi ! " + std::to_string(i));
  auto batch = t->encode_batch(texts, true, 3);
  ASSERT_EQ(batch.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) ASSERT_EQ(batch[i], t->encode(texts[i])) << i;
  EXPECT_EQ(t->encode_batch(texts, true, 3), batch) << "a second call (warm worker threads) must agree";
  // A forked child has none of the parent's worker threads; its batch must still finish.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(30);  // a hang kills the child, and the test fails below
    bool ok = t->encode_batch(texts, true, 3) == batch;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

TEST(Loader, FilesAndFolders) {
  ScratchDir dir;
  EXPECT_THROW(load_tokenizer(dir.path()), TokenizerError) << "folder without a tokenizer";
  EXPECT_THROW(load_tokenizer(dir.path() / "missing.json"), TokenizerError);
  write_file(dir.path() / "tokenizer.json", "{not json");
  try {
    load_tokenizer(dir.path() / "tokenizer.json");
    FAIL() << "malformed JSON must not load";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON: parse error at line 1, column 3"), std::string::npos)
        << e.what();
    EXPECT_EQ(std::string(e.what()).find("json.exception"), std::string::npos) << e.what();
  }
  // Bytes that are no model: said in words, not as the library's source line.
  write_file(dir.path() / "tokenizer.model", "garbage");
  try {
    load_tokenizer(dir.path() / "tokenizer.model");
    FAIL() << "garbage must not load";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("not a tokenizer file"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find(".cc("), std::string::npos) << e.what();
  }
  // A file of gigabytes (sparse here) is refused before it is read: protobuf would abort on it.
  std::filesystem::resize_file(dir.path() / "tokenizer.model", (uintmax_t{3} << 30) + 7);
  try {
    load_tokenizer(dir.path() / "tokenizer.model");
    FAIL() << "a 3 GiB tokenizer.model must be refused";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("3.0 GiB is far larger than any tokenizer file"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace autotrain::tokenizer
