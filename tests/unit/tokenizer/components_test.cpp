// Components of the tokenizer.json pipeline, tested on their own with hand-derived expectations.
#include <gtest/gtest.h>

#include <random>

#include "added_vocab.h"
#include "bpe.h"
#include "decoders.h"
#include "normalizers.h"
#include "pre_tokenizers.h"
#include "unicode_regex.h"
#include "unicode.h"

namespace autotrain::tokenizer {
namespace {

std::vector<std::string> texts(const Pieces& p) {
  std::vector<std::string> out;
  for (const auto& x : p) out.push_back(x.text);
  return out;
}

std::vector<std::string> gpt2(std::string_view s) {
  std::vector<std::string> out;
  gpt2_split(s, [&](size_t a, size_t b) { out.emplace_back(s.substr(a, b - a)); });
  return out;
}

using V = std::vector<std::string>;

TEST(Utf8, RepairFollowsMaximalSubpartPractice) {
  EXPECT_TRUE(unicode::is_valid_utf8("héllo 🦙"));
  EXPECT_FALSE(unicode::is_valid_utf8("\xC3"));
  EXPECT_FALSE(unicode::is_valid_utf8("\xED\xA0\x80"));  // surrogate
  EXPECT_FALSE(unicode::is_valid_utf8("\xC0\xAF"));      // overlong
  // Python: b"a\xf0\x9f\x98b".decode("utf-8", "replace") == "a\ufffdb" (one U+FFFD for the
  // truncated sequence); b"\xed\xa0\x80" gives three; b"\xff" one.
  EXPECT_EQ(unicode::to_valid_utf8("a\xF0\x9F\x98" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(unicode::to_valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(unicode::to_valid_utf8("\xFF"), "\xEF\xBF\xBD");
  EXPECT_EQ(unicode::to_valid_utf8("\xE2\x82" "x"), "\xEF\xBF\xBD" "x");
}

TEST(Unicode, ClassesAndCaseMapping) {
  EXPECT_TRUE(unicode::is_punctuation(U'!'));
  EXPECT_TRUE(unicode::is_punctuation(U'\u3001'));  // ideographic comma (Po)
  EXPECT_TRUE(unicode::is_punctuation(U'$'));       // ASCII punctuation although Sc
  EXPECT_FALSE(unicode::is_punctuation(U'\u20AC'));  // € is Sc, not ASCII
  EXPECT_TRUE(unicode::is_numeric(U'\u00B2'));      // ² (No)
  EXPECT_TRUE(unicode::is_whitespace(U'\u0085'));
  EXPECT_FALSE(unicode::is_whitespace(U'\u200B'));  // zero width space is not White_Space
  EXPECT_EQ(unicode::lowercase("ÀΣİ"), "àσi\u0307");
  EXPECT_EQ(unicode::nfkc("ﬁ²"), "fi2");
  EXPECT_EQ(unicode::nfc("e\u0301"), "é");
}

TEST(Gpt2Split, FollowsThePattern) {
  EXPECT_EQ(gpt2("Hello world's  end  "), (V{"Hello", " world", "'s", " ", " end", "  "}));
  EXPECT_EQ(gpt2("I'll 've 'RE"), (V{"I", "'ll", " '", "ve", " '", "RE"}));
  EXPECT_EQ(gpt2("a\n\n b"), (V{"a", "\n\n", " b"}));
  EXPECT_EQ(gpt2(" 123abc!!?"), (V{" 123", "abc", "!!?"}));
  EXPECT_EQ(gpt2("\t x"), (V{"\t", " x"}));
  EXPECT_EQ(gpt2("x \t"), (V{"x", " \t"}));
}

// The hand-written matcher must agree with a real regex engine running GPT-2's pattern.
TEST(Gpt2Split, AgreesWithPcre2OnRandomText) {
  Regex re(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
  const char32_t alphabet[] = {U'a', U'Z', U'é', U'Ж', U'中', U'1', U'²', U'٣', U' ', U' ', U'\t', U'\n', U'\r',
                               U'\u00A0', U'\u0085', U'\u3000', U'\'', U's', U't', U'l', U'!', U'.', U'🦙', U'\u200D',
                               U'\u0301', U'_', U'-'};
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s;
    int len = static_cast<int>(rng() % 24);
    for (int k = 0; k < len; ++k) unicode::append_utf8(s, alphabet[rng() % std::size(alphabet)]);
    std::vector<MatchRange> m;
    re.find_all(s, m);
    V expected;
    for (auto r : m) expected.push_back(s.substr(r.start, r.end - r.start));
    ASSERT_EQ(gpt2(s), expected) << "text: '" << s << "'";
  }
}

TEST(SplitBehaviors, AllFive) {
  auto run = [](SplitBehavior b, bool invert = false) {
    Pieces p{{"a-b--c-", true}};
    SplitPreTokenizer(Regex("-"), b, invert).split(p);
    return texts(p);
  };
  EXPECT_EQ(run(SplitBehavior::Removed), (V{"a", "b", "c"}));
  EXPECT_EQ(run(SplitBehavior::Isolated), (V{"a", "-", "b", "-", "-", "c", "-"}));
  EXPECT_EQ(run(SplitBehavior::MergedWithPrevious), (V{"a-", "b-", "-", "c-"}));
  EXPECT_EQ(run(SplitBehavior::MergedWithNext), (V{"a", "-b", "-", "-c", "-"}));
  EXPECT_EQ(run(SplitBehavior::Contiguous), (V{"a", "-", "b", "--", "c", "-"}));
  EXPECT_EQ(run(SplitBehavior::Removed, /*invert=*/true), (V{"-", "-", "-", "-"}));
}

TEST(PreTokenizers, DigitsPunctuationWhitespaceMetaspace) {
  Pieces p{{"ab123c4!?", true}};
  DigitsPreTokenizer(false).split(p);
  EXPECT_EQ(texts(p), (V{"ab", "123", "c", "4", "!?"}));
  p = {{"ab12", true}};
  DigitsPreTokenizer(true).split(p);
  EXPECT_EQ(texts(p), (V{"ab", "1", "2"}));
  p = {{"Hi, there!!", true}};
  PunctuationPreTokenizer(SplitBehavior::Contiguous).split(p);
  EXPECT_EQ(texts(p), (V{"Hi", ",", " there", "!!"}));
  p = {{"Hey  man!!, ok", true}};
  WhitespacePreTokenizer().split(p);
  EXPECT_EQ(texts(p), (V{"Hey", "man", "!!,", "ok"}));
  p = {{" a  b\tc ", true}};
  CharSplitPreTokenizer(std::nullopt).split(p);
  EXPECT_EQ(texts(p), (V{"a", "b", "c"}));
  p = {{"Hey friend", true}, {"x y", false}};
  MetaspacePreTokenizer(U'▁', PrependScheme::First, true).split(p);
  EXPECT_EQ(texts(p), (V{"▁Hey", "▁friend", "x", "▁y"}));
}

TEST(PreTokenizers, ByteLevelMapsBytes) {
  Pieces p{{"Hi\n é", true}};
  ByteLevelPreTokenizer(/*add_prefix_space=*/true, /*use_regex=*/true).split(p);
  EXPECT_EQ(texts(p), (V{"ĠHi", "Ċ", "ĠÃ©"}));
  EXPECT_EQ(byte_level_chars()[0x20], "Ġ");
  EXPECT_EQ(byte_level_chars()[0xAD], "\u0143");
  EXPECT_EQ(byte_level_byte(U'Ġ'), 0x20);
}

TEST(Normalizers, StripPrependReplaceLowercase) {
  EXPECT_EQ(StripNormalizer(true, true).normalize("\u3000 a b \n"), "a b");
  EXPECT_EQ(StripNormalizer(false, true).normalize(" a "), " a");
  EXPECT_EQ(PrependNormalizer("▁").normalize("x"), "▁x");
  EXPECT_EQ(PrependNormalizer("▁").normalize(""), "");
  EXPECT_EQ(ReplaceNormalizer(Regex::literal(" "), "▁").normalize("a b  c"), "a▁b▁▁c");
  EXPECT_EQ(ReplaceNormalizer(Regex(R"(\s+)"), " ").normalize("a \t\n b"), "a b");
  EXPECT_EQ(LowercaseNormalizer().normalize("ÉCOLE"), "école");
}

BpeModel tiny_model(BpeOptions opt = {}) {
  StringMap<TokenId> vocab{{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"abc", 5}, {"<unk>", 6},
                           {"<0x78>", 7}, {"<0xC3>", 8}, {"<0xA9>", 9}};
  return BpeModel(vocab, {{"b", "c"}, {"a", "b"}, {"a", "bc"}}, opt);
}

std::vector<TokenId> bpe(const BpeModel& m, std::string_view s) {
  std::vector<TokenId> ids;
  m.tokenize(s, ids);
  return ids;
}

TEST(Bpe, MergesByRankThenLeftmost) {
  BpeModel m = tiny_model();
  EXPECT_EQ(bpe(m, "abc"), (std::vector<TokenId>{5}));   // b+c (rank 0) first, then a+bc
  EXPECT_EQ(bpe(m, "abab"), (std::vector<TokenId>{3, 3}));
  EXPECT_EQ(bpe(m, "axb"), (std::vector<TokenId>{3}));  // unknown char dropped (no unk): a, b merge
  EXPECT_EQ(bpe(m, "abc"), (std::vector<TokenId>{5})) << "cached result must equal the first";
}

TEST(Bpe, UnknownsAndByteFallback) {
  BpeOptions unk;
  unk.unk_token = "<unk>";
  EXPECT_EQ(bpe(tiny_model(unk), "axxb"), (std::vector<TokenId>{0, 6, 6, 1}));
  unk.fuse_unk = true;
  EXPECT_EQ(bpe(tiny_model(unk), "axxb"), (std::vector<TokenId>{0, 6, 1}));
  BpeOptions fb;
  fb.byte_fallback = true;
  fb.unk_token = "<unk>";
  EXPECT_EQ(bpe(tiny_model(fb), "xé"), (std::vector<TokenId>{7, 8, 9}));
  EXPECT_EQ(bpe(tiny_model(fb), "z"), (std::vector<TokenId>{6})) << "no <0x7A> token: unk";
}

TEST(Bpe, BadMergesAreErrors) {
  StringMap<TokenId> vocab{{"a", 0}, {"b", 1}};
  EXPECT_THROW(BpeModel(vocab, {{"a", "b"}}, {}), std::invalid_argument);
  EXPECT_THROW(BpeModel(vocab, {{"a", "z"}}, {}), std::invalid_argument);
  BpeOptions opt;
  opt.unk_token = "<unk>";
  EXPECT_THROW(BpeModel(vocab, {}, opt), std::invalid_argument);
}

TEST(Bpe, LongPieceIsLinearEnough) {
  // 200k identical characters: a quadratic merge loop would take minutes.
  BpeModel m = tiny_model();
  std::string s(200000, 'a');
  EXPECT_EQ(bpe(m, s).size(), 200000u);
  std::string t;
  for (int i = 0; i < 100000; ++i) t += "ab";
  EXPECT_EQ(bpe(m, t).size(), 100000u);
}

TEST(AddedTokens, LeftmostLongestAndStripping) {
  auto tok = [](std::string c, TokenId id) {
    AddedToken t;
    t.content = c;
    t.id = id;
    return t;
  };
  AddedToken a = tok("<s>", 1), b = tok("<s>x", 2), l = tok("<L>", 3), r = tok("<R>", 4), w = tok("sw", 5);
  l.lstrip = true;
  r.rstrip = true;
  w.single_word = true;
  AddedTokenMatcher m({a, b, l, r, w}, {"<s>", "<s>x", "<L>", "<R>", "sw"});
  std::vector<Segment> seg;
  std::string text = "q<s>x<s>  <L><R>  z sw swx";
  m.split(text, seg);
  std::vector<std::pair<std::string, int>> got;
  for (auto& s : seg) got.emplace_back(text.substr(s.start, s.end - s.start), s.id ? *s.id : -1);
  std::vector<std::pair<std::string, int>> want{{"q", -1}, {"<s>x", 2}, {"<s>", 1}, {"  <L>", 3},
                                                {"<R>  ", 4}, {"z ", -1}, {"sw", 5}, {" swx", -1}};
  EXPECT_EQ(got, want);
}

TEST(Decoders, ByteLevelMetaspaceByteFallbackStrip) {
  std::vector<std::string> t{"Hello", "Ġw", "orld", "Ċ"};
  ByteLevelDecoder().decode_chain(t);
  EXPECT_EQ(t, (V{"Hello world\n"}));
  t = {"a一Ġ", "Ġb"};  // a token with a character outside the byte table keeps its own bytes
  ByteLevelDecoder().decode_chain(t);
  EXPECT_EQ(t, (V{"a一Ġ b"}));
  t = {"▁a▁b", "▁c", "x▁"};
  MetaspaceDecoder(U'▁', PrependScheme::Always).decode_chain(t);
  EXPECT_EQ(t, (V{"ab", " c", "x "}));
  t = {"<0x41>", "<0xC3>", "x", "<0xC3>", "<0xA9>"};
  ByteFallbackDecoder().decode_chain(t);
  EXPECT_EQ(t, (V{"\xEF\xBF\xBD\xEF\xBF\xBD", "x", "é"}));
  t = {"  a ", " b"};
  StripDecoder(U' ', 1, 0).decode_chain(t);
  EXPECT_EQ(t, (V{" a ", "b"}));
}

}  // namespace
}  // namespace autotrain::tokenizer
