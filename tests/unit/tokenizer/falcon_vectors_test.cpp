// The 47 Hugging Face-generated vectors of ../shared/data/falcon-7b/tokenizer-tests (llama.cpp's
// test format: texts separated by "\n__ggml_vocab_test__\n", one line of ids per text), plus the
// samples of falcon-qlora-spec.md §2.
#include <gtest/gtest.h>

#include "autotrain/tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace autotrain::tokenizer {
namespace {

using testing::falcon_dir;
using testing::read_file;

class FalconTokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (auto dir = falcon_dir()) tok_ = load_tokenizer(*dir).release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
  }
  void SetUp() override {
    if (!tok_) GTEST_SKIP() << "../shared/data/falcon-7b is absent (AUTOTRAIN_SHARED_DIR): no Falcon tokenizer to test";
  }
  static Tokenizer* tok_;
};
Tokenizer* FalconTokenizer::tok_ = nullptr;

std::vector<std::string> split_all(const std::string& s, const std::string& sep) {
  std::vector<std::string> parts;
  size_t pos = 0;
  for (size_t f; (f = s.find(sep, pos)) != std::string::npos; pos = f + sep.size()) parts.push_back(s.substr(pos, f - pos));
  parts.push_back(s.substr(pos));
  return parts;
}

TEST_F(FalconTokenizer, AllHuggingFaceVectors) {
  auto dir = *falcon_dir() / "tokenizer-tests";
  auto texts = split_all(read_file(dir / "ggml-vocab-falcon.gguf.inp"), "\n__ggml_vocab_test__\n");
  auto lines = split_all(read_file(dir / "ggml-vocab-falcon.gguf.out"), "\n");
  ASSERT_EQ(texts.size(), lines.size()) << "the .inp and .out files disagree on the number of vectors";
  ASSERT_EQ(texts.size(), 47u);
  int checked = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<TokenId> expected;
    std::istringstream ss(lines[i]);
    for (TokenId id; ss >> id;) expected.push_back(id);
    EXPECT_EQ(tok_->encode(texts[i], /*add_special_tokens=*/false), expected) << "vector " << i << ": '" << texts[i] << "'";
    // Falcon has no post-processor: add_special_tokens changes nothing.
    EXPECT_EQ(tok_->encode(texts[i], true), expected) << "vector " << i;
    ++checked;
  }
  EXPECT_EQ(checked, 47);
}

TEST_F(FalconTokenizer, SpecSamples) {
  EXPECT_EQ(tok_->encode(" "), (std::vector<TokenId>{204}));
  EXPECT_EQ(tok_->encode("  "), (std::vector<TokenId>{258}));
  EXPECT_EQ(tok_->encode("\n"), (std::vector<TokenId>{193}));
  EXPECT_EQ(tok_->encode("a\n\n"), (std::vector<TokenId>{76, 1001}));
  EXPECT_EQ(tok_->encode("Hello world"), (std::vector<TokenId>{9856, 1079}));
  EXPECT_EQ(tok_->encode(" Hello, world!"), (std::vector<TokenId>{23090, 23, 1079, 12}));
  EXPECT_EQ(tok_->encode("a >>TITLE<< b"), (std::vector<TokenId>{76, 204, 0, 262}));
}

TEST_F(FalconTokenizer, SpecialIdsAndVocabulary) {
  EXPECT_EQ(tok_->vocab_size(), 65024u);
  SpecialIds s = tok_->special_ids();
  EXPECT_EQ(s.eos, 11);
  EXPECT_FALSE(s.bos.has_value()) << "Falcon's tokenizer_config.json names no bos token";
  EXPECT_EQ(s.pad, 11) << "pad falls back to eos";
  EXPECT_EQ(tok_->token_to_id("<|endoftext|>"), 11);
  EXPECT_EQ(tok_->id_to_token(204), "Ġ");
  EXPECT_TRUE(tok_->is_special(0));
  EXPECT_FALSE(tok_->is_special(204));
  EXPECT_EQ(tok_->content_hash().size(), 32u);
}

TEST_F(FalconTokenizer, UnreachableBytesAreDropped) {
  // Byte 0x03 maps to a character missing from the vocabulary: the reference drops it.
  EXPECT_EQ(tok_->encode("a\x03"), tok_->encode("a"));
}

TEST_F(FalconTokenizer, DecodeRoundTripAndSkipSpecial) {
  std::string text = "Hello, y'all! 3333 Führer 🦙\n\tend<|endoftext|>";
  auto ids = tok_->encode(text);
  EXPECT_EQ(tok_->decode(ids), text);
  EXPECT_EQ(tok_->decode(ids, /*skip_special_tokens=*/true), "Hello, y'all! 3333 Führer 🦙\n\tend");
  std::vector<TokenId> bad{70000};
  EXPECT_THROW(tok_->decode(bad), TokenizerError);
}

TEST_F(FalconTokenizer, BatchEqualsSequential) {
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back("doc " + std::to_string(i * 7919) + " — Ünïcödé " + std::string(i % 7, ' ') + "x");
  auto batch = tok_->encode_batch(texts, true, 4);
  ASSERT_EQ(batch.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(batch[i], tok_->encode(texts[i])) << i;
}

}  // namespace
}  // namespace autotrain::tokenizer
