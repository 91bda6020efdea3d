#include "hf_tokenizer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <set>

#include "added_vocab.h"
#include "bpe.h"
#include "decoders.h"
#include "normalizers.h"
#include "post_processors.h"
#include "pre_tokenizers.h"
#include "unicode.h"

#include "autotrain/io/json_error.h"
#include "autotrain/io/json_text.h"

namespace autotrain::tokenizer {

namespace {

using json = nlohmann::json;

// Builds components from JSON, naming `source` and the JSON path of the offending value in
// every error.
class Loader {
 public:
  explicit Loader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& where, const std::string& what, const std::string& hint = "") const {
    std::string msg = fmt::format("{}: {}: {}", source_, where, what);
    if (!hint.empty()) msg += "\n  hint: " + hint;
    throw TokenizerError(msg);
  }

  std::string type_of(const json& j, const std::string& where) const {
    if (!j.is_object()) fail(where, "expected an object");
    auto it = j.find("type");
    if (it == j.end() || !it->is_string()) fail(where, "has no \"type\"");
    return it->get<std::string>();
  }

  template <typename T>
  T get(const json& j, const char* key, const std::string& where, T fallback) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    try {
      return it->get<T>();
    } catch (const json::exception&) {
      fail(where + "." + key, fmt::format("unexpected value {}", it->dump()));
    }
  }

  std::string get_string(const json& j, const char* key, const std::string& where) const {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) fail(where + "." + key, "missing or not a string");
    return it->get<std::string>();
  }

  char32_t get_char(const json& j, const char* key, const std::string& where, char32_t fallback) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_string()) fail(where + "." + key, "expected a one-character string");
    std::string s = it->get<std::string>();
    const char* p = s.data();
    if (s.empty() || !unicode::is_valid_utf8(s)) fail(where + "." + key, "expected a one-character string");
    char32_t c = unicode::next_code_point(p);
    if (p != s.data() + s.size()) fail(where + "." + key, fmt::format("'{}' is more than one character", s));
    return c;
  }

  // {"String": "..."} or {"Regex": "..."}.
  Regex pattern(const json& j, const std::string& where) const {
    if (j.is_object() && j.contains("String") && j["String"].is_string()) return Regex::literal(j["String"].get<std::string>());
    if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) {
      try {
        return Regex(j["Regex"].get<std::string>());
      } catch (const std::invalid_argument& e) {
        fail(where, e.what());
      }
    }
    fail(where, fmt::format("expected {{\"String\": ...}} or {{\"Regex\": ...}}, got {}", j.dump()));
  }

  SplitBehavior behavior(const json& j, const char* key, const std::string& where, SplitBehavior fallback) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    std::string b = it->is_string() ? it->get<std::string>() : "";
    if (b == "Removed") return SplitBehavior::Removed;
    if (b == "Isolated") return SplitBehavior::Isolated;
    if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
    if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
    if (b == "Contiguous") return SplitBehavior::Contiguous;
    fail(where + "." + key, fmt::format("unknown behavior {}", it->dump()),
         "one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
  }

  PrependScheme prepend_scheme(const json& j, const std::string& where) const {
    if (auto it = j.find("prepend_scheme"); it != j.end() && !it->is_null()) {
      std::string s = it->is_string() ? it->get<std::string>() : "";
      if (s == "always") return PrependScheme::Always;
      if (s == "first") return PrependScheme::First;
      if (s == "never") return PrependScheme::Never;
      fail(where + ".prepend_scheme", fmt::format("unknown value {}", it->dump()), "one of always, first, never");
    }
    // Files written before prepend_scheme existed say add_prefix_space.
    return get<bool>(j, "add_prefix_space", where, true) ? PrependScheme::Always : PrependScheme::Never;
  }

  std::unique_ptr<Normalizer> normalizer(const json& j, const std::string& where) const {
    std::string type = type_of(j, where);
    if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFC);
    if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFD);
    if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFKC);
    if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFKD);
    if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
    if (type == "Strip")
      return std::make_unique<StripNormalizer>(get<bool>(j, "strip_left", where, true),
                                               get<bool>(j, "strip_right", where, true));
    if (type == "Prepend") return std::make_unique<PrependNormalizer>(get_string(j, "prepend", where));
    if (type == "Replace")
      return std::make_unique<ReplaceNormalizer>(pattern(j.value("pattern", json()), where + ".pattern"),
                                                 get_string(j, "content", where));
    if (type == "Sequence") {
      std::vector<std::unique_ptr<Normalizer>> steps;
      const json& list = j.value("normalizers", json::array());
      if (!list.is_array()) fail(where + ".normalizers", "expected a list");
      for (size_t i = 0; i < list.size(); ++i)
        steps.push_back(normalizer(list[i], fmt::format("{}.normalizers[{}]", where, i)));
      return std::make_unique<SequenceNormalizer>(std::move(steps));
    }
    fail(where + ".type", fmt::format("normalizer '{}' is not supported", type),
         "supported: NFC, NFD, NFKC, NFKD, Lowercase, Strip, Prepend, Replace, Sequence. A SentencePiece "
         "model (tokenizer.model) can be loaded directly instead");
  }

  std::unique_ptr<PreTokenizer> pre_tokenizer(const json& j, const std::string& where) const {
    std::string type = type_of(j, where);
    if (type == "ByteLevel")
      return std::make_unique<ByteLevelPreTokenizer>(get<bool>(j, "add_prefix_space", where, true),
                                                     get<bool>(j, "use_regex", where, true));
    if (type == "Punctuation")
      return std::make_unique<PunctuationPreTokenizer>(behavior(j, "behavior", where, SplitBehavior::Isolated));
    if (type == "Digits") return std::make_unique<DigitsPreTokenizer>(get<bool>(j, "individual_digits", where, false));
    if (type == "Split") {
      if (!j.contains("behavior")) fail(where + ".behavior", "missing");
      return std::make_unique<SplitPreTokenizer>(pattern(j.value("pattern", json()), where + ".pattern"),
                                                 behavior(j, "behavior", where, SplitBehavior::Isolated),
                                                 get<bool>(j, "invert", where, false));
    }
    if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
    if (type == "WhitespaceSplit") return std::make_unique<CharSplitPreTokenizer>(std::nullopt);
    if (type == "CharDelimiterSplit")
      return std::make_unique<CharSplitPreTokenizer>(get_char(j, "delimiter", where, U' '));
    if (type == "Metaspace")
      return std::make_unique<MetaspacePreTokenizer>(get_char(j, "replacement", where, U'\u2581'),
                                                     prepend_scheme(j, where), get<bool>(j, "split", where, true));
    if (type == "BertPreTokenizer") {
      std::vector<std::unique_ptr<PreTokenizer>> steps;
      steps.push_back(std::make_unique<CharSplitPreTokenizer>(std::nullopt));
      steps.push_back(std::make_unique<PunctuationPreTokenizer>(SplitBehavior::Isolated));
      return std::make_unique<SequencePreTokenizer>(std::move(steps));
    }
    if (type == "Sequence") {
      std::vector<std::unique_ptr<PreTokenizer>> steps;
      const json& list = j.value("pretokenizers", json::array());
      if (!list.is_array()) fail(where + ".pretokenizers", "expected a list");
      for (size_t i = 0; i < list.size(); ++i)
        steps.push_back(pre_tokenizer(list[i], fmt::format("{}.pretokenizers[{}]", where, i)));
      return std::make_unique<SequencePreTokenizer>(std::move(steps));
    }
    fail(where + ".type", fmt::format("pre-tokenizer '{}' is not supported", type),
         "supported: ByteLevel, Punctuation, Digits, Split, Whitespace, WhitespaceSplit, CharDelimiterSplit, "
         "Metaspace, BertPreTokenizer, Sequence");
  }

  std::unique_ptr<Decoder> decoder(const json& j, const std::string& where) const {
    std::string type = type_of(j, where);
    if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
    if (type == "Metaspace")
      return std::make_unique<MetaspaceDecoder>(get_char(j, "replacement", where, U'\u2581'), prepend_scheme(j, where));
    if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
    if (type == "Fuse") return std::make_unique<FuseDecoder>();
    if (type == "Strip")
      return std::make_unique<StripDecoder>(get_char(j, "content", where, U' '), get<size_t>(j, "start", where, 0),
                                            get<size_t>(j, "stop", where, 0));
    if (type == "Replace")
      return std::make_unique<ReplaceDecoder>(pattern(j.value("pattern", json()), where + ".pattern"),
                                              get_string(j, "content", where));
    if (type == "BPEDecoder") return std::make_unique<BpeSuffixDecoder>(get<std::string>(j, "suffix", where, "</w>"));
    if (type == "Sequence") {
      std::vector<std::unique_ptr<Decoder>> steps;
      const json& list = j.value("decoders", json::array());
      if (!list.is_array()) fail(where + ".decoders", "expected a list");
      for (size_t i = 0; i < list.size(); ++i)
        steps.push_back(decoder(list[i], fmt::format("{}.decoders[{}]", where, i)));
      return std::make_unique<SequenceDecoder>(std::move(steps));
    }
    fail(where + ".type", fmt::format("decoder '{}' is not supported", type),
         "supported: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder, Sequence");
  }

  std::unique_ptr<PostProcessor> post_processor(const json& j, const std::string& where) const {
    std::string type = type_of(j, where);
    if (type == "ByteLevel") return nullptr;  // only trims offsets; ids are unchanged
    if (type == "TemplateProcessing") {
      const json& single = j.value("single", json());
      const json& specials = j.value("special_tokens", json::object());
      if (!single.is_array()) fail(where + ".single", "expected a list");
      std::vector<TokenId> before, after;
      bool seen_sequence = false;
      for (size_t i = 0; i < single.size(); ++i) {
        std::string w = fmt::format("{}.single[{}]", where, i);
        const json& piece = single[i];
        if (piece.contains("Sequence")) {
          if (seen_sequence) fail(w, "the single template uses the sequence twice");
          seen_sequence = true;
        } else if (piece.contains("SpecialToken")) {
          std::string name = get_string(piece["SpecialToken"], "id", w + ".SpecialToken");
          auto it = specials.find(name);
          if (it == specials.end() || !it->contains("ids") || !(*it)["ids"].is_array())
            fail(w, fmt::format("special token '{}' is not in special_tokens", name));
          for (const json& id : (*it)["ids"]) (seen_sequence ? after : before).push_back(id.get<TokenId>());
        } else {
          fail(w, fmt::format("unexpected template piece {}", piece.dump()));
        }
      }
      if (!seen_sequence) fail(where + ".single", "the template has no Sequence");
      return std::make_unique<TemplatePostProcessor>(std::move(before), std::move(after));
    }
    if (type == "RobertaProcessing" || type == "BertProcessing") {
      auto token = [&](const char* key) -> TokenId {
        const json& v = j.value(key, json());
        if (!v.is_array() || v.size() != 2 || !v[1].is_number_integer()) fail(where + "." + key, "expected [token, id]");
        return v[1].get<TokenId>();
      };
      return std::make_unique<TemplatePostProcessor>(std::vector<TokenId>{token("cls")}, std::vector<TokenId>{token("sep")});
    }
    if (type == "Sequence") {
      std::vector<std::unique_ptr<PostProcessor>> steps;
      const json& list = j.value("processors", json::array());
      if (!list.is_array()) fail(where + ".processors", "expected a list");
      for (size_t i = 0; i < list.size(); ++i)
        if (auto p = post_processor(list[i], fmt::format("{}.processors[{}]", where, i))) steps.push_back(std::move(p));
      return std::make_unique<SequencePostProcessor>(std::move(steps));
    }
    fail(where + ".type", fmt::format("post-processor '{}' is not supported", type),
         "supported: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence");
  }

  std::unique_ptr<BpeModel> model(const json& j) const {
    const std::string where = "model";
    std::string type = j.is_object() && j.contains("type") ? j["type"].get<std::string>() : "BPE";
    if (type != "BPE")
      fail("model.type", fmt::format("model '{}' is not supported (only BPE)", type),
           type == "Unigram" ? "for a SentencePiece model, point --tokenizer at its tokenizer.model" : "");
    if (auto it = j.find("dropout"); it != j.end() && !it->is_null())
      fail("model.dropout", fmt::format("dropout {} is not supported (it makes encoding random)", it->dump()),
           "set \"dropout\": null");
    BpeOptions opt;
    if (auto it = j.find("unk_token"); it != j.end() && !it->is_null()) opt.unk_token = get_string(j, "unk_token", where);
    opt.continuing_subword_prefix = get<std::string>(j, "continuing_subword_prefix", where, "");
    opt.end_of_word_suffix = get<std::string>(j, "end_of_word_suffix", where, "");
    opt.fuse_unk = get<bool>(j, "fuse_unk", where, false);
    opt.byte_fallback = get<bool>(j, "byte_fallback", where, false);
    opt.ignore_merges = get<bool>(j, "ignore_merges", where, false);

    const json& vocab_json = j.value("vocab", json());
    if (!vocab_json.is_object()) fail("model.vocab", "missing or not an object");
    StringMap<TokenId> vocab;
    vocab.reserve(vocab_json.size());
    for (const auto& [tok, id] : vocab_json.items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
        fail("model.vocab", fmt::format("id of '{}' is not a valid id: {}", tok, id.dump()));
      vocab.emplace(tok, id.get<TokenId>());
    }
    const json& merges_json = j.value("merges", json::array());
    if (!merges_json.is_array()) fail("model.merges", "expected a list");
    std::vector<std::pair<std::string, std::string>> merges;
    merges.reserve(merges_json.size());
    for (size_t i = 0; i < merges_json.size(); ++i) {
      const json& m = merges_json[i];
      if (m.is_string()) {
        // "a b": exactly one space, as the reference requires.
        std::string s = m.get<std::string>();
        size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          fail(fmt::format("model.merges[{}]", i), fmt::format("'{}' is not two tokens separated by one space", s));
        merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        fail(fmt::format("model.merges[{}]", i), fmt::format("expected \"a b\" or [\"a\", \"b\"], got {}", m.dump()));
      }
    }
    try {
      return std::make_unique<BpeModel>(std::move(vocab), merges, std::move(opt));
    } catch (const std::invalid_argument& e) {
      fail("model", e.what());
    }
  }

 private:
  std::string source_;
};

class HfTokenizer final : public Tokenizer {
 public:
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;
  std::vector<AddedToken> added;
  std::unordered_map<TokenId, size_t> added_by_id;
  StringMap<TokenId> added_by_content;
  std::unique_ptr<AddedTokenMatcher> raw_matcher;         // normalized=false tokens, on raw text
  std::unique_ptr<AddedTokenMatcher> normalized_matcher;  // normalized=true tokens, on normalized text
  size_t vocab_size_ = 0;
  SpecialIds specials;
  std::string hash;

  std::vector<TokenId> encode(std::string_view input, bool add_special_tokens) const override {
    std::string repaired;
    const std::string_view text = unicode::valid_utf8_view(input, repaired);
    std::vector<TokenId> ids;
    ids.reserve(text.size() / 3 + 4);
    std::vector<Segment> raw;
    if (raw_matcher->empty())
      raw.push_back({0, text.size(), std::nullopt});
    else
      raw_matcher->split(text, raw);
    Pieces pieces;
    std::vector<Segment> inner;
    for (const Segment& seg : raw) {
      if (seg.id) {
        ids.push_back(*seg.id);
        continue;
      }
      std::string normalized(text.substr(seg.start, seg.end - seg.start));
      if (normalizer) normalized = normalizer->normalize(std::move(normalized));
      inner.clear();
      if (normalized_matcher->empty())
        inner.push_back({0, normalized.size(), std::nullopt});
      else
        normalized_matcher->split(normalized, inner);
      for (const Segment& sub : inner) {
        if (sub.id) {
          ids.push_back(*sub.id);
          continue;
        }
        pieces.clear();
        pieces.push_back({normalized.substr(sub.start, sub.end - sub.start), seg.start == 0 && sub.start == 0});
        if (pre_tokenizer) pre_tokenizer->split(pieces);
        for (const Piece& p : pieces) model->tokenize(p.text, ids);
      }
    }
    if (add_special_tokens && post_processor) post_processor->process(ids);
    return ids;
  }

  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (TokenId id : ids) {
      if (auto it = added_by_id.find(id); it != added_by_id.end()) {
        if (skip_special_tokens && added[it->second].special) continue;
        tokens.push_back(added[it->second].content);
        continue;
      }
      const std::string* t = model->id_to_token(id);
      if (!t)
        throw TokenizerError(fmt::format("cannot decode id {}: not in the vocabulary (ids are 0..{})", id,
                                         vocab_size_ == 0 ? 0 : vocab_size_ - 1));
      tokens.push_back(*t);
    }
    if (!decoder) {
      // The reference joins tokens with spaces when there is no decoder.
      std::string out;
      for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
      return out;
    }
    decoder->decode_chain(tokens);
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
  }

  std::optional<TokenId> token_to_id(std::string_view token) const override {
    if (auto it = added_by_content.find(token); it != added_by_content.end()) return it->second;
    return model->token_to_id(token);
  }
  std::optional<std::string> id_to_token(TokenId id) const override {
    if (auto it = added_by_id.find(id); it != added_by_id.end()) return added[it->second].content;
    if (const std::string* t = model->id_to_token(id)) return *t;
    return std::nullopt;
  }
  bool is_special(TokenId id) const override {
    auto it = added_by_id.find(id);
    return it != added_by_id.end() && added[it->second].special;
  }
  size_t vocab_size() const override { return vocab_size_; }
  SpecialIds special_ids() const override { return specials; }
  std::string content_hash() const override { return hash; }
  std::string describe() const override { return "tokenizer.json (BPE)"; }
};

}  // namespace

namespace {

std::unique_ptr<Tokenizer> load_hf_tokenizer_unchecked(std::string_view json_text, const std::string& source,
                                                       const SpecialTokenConfig& specials) {
  Loader L(source);
  json j;
  try {
    j = io::parse_json_text(json_text);
  } catch (const json::parse_error& e) {
    throw TokenizerError(fmt::format("{}: not valid JSON: {}", source, io::json_error_text(e)));
  }
  if (!j.is_object()) throw TokenizerError(source + ": expected a JSON object at the top level");
  auto present = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  if (!present("model")) L.fail("model", "missing", "is this a tokenizer.json file?");

  auto t = std::make_unique<HfTokenizer>();
  t->model = L.model(j["model"]);
  if (present("normalizer")) t->normalizer = L.normalizer(j["normalizer"], "normalizer");
  if (present("pre_tokenizer")) t->pre_tokenizer = L.pre_tokenizer(j["pre_tokenizer"], "pre_tokenizer");
  if (present("decoder")) t->decoder = L.decoder(j["decoder"], "decoder");
  // `truncation` and `padding` are ignored, as transformers does unless a call asks for them.

  size_t limit = t->model->id_limit();
  if (present("added_tokens")) {
    const json& list = j["added_tokens"];
    if (!list.is_array()) L.fail("added_tokens", "expected a list");
    for (size_t i = 0; i < list.size(); ++i) {
      std::string w = fmt::format("added_tokens[{}]", i);
      const json& a = list[i];
      if (!a.is_object()) L.fail(w, "expected an object");
      AddedToken tok;
      tok.content = L.get_string(a, "content", w);
      if (!a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 || a["id"].get<int64_t>() > INT32_MAX)
        L.fail(w + ".id", "missing or not a valid id");
      tok.id = a["id"].get<TokenId>();
      tok.special = L.get<bool>(a, "special", w, false);
      tok.lstrip = L.get<bool>(a, "lstrip", w, false);
      tok.rstrip = L.get<bool>(a, "rstrip", w, false);
      tok.single_word = L.get<bool>(a, "single_word", w, false);
      tok.normalized = L.get<bool>(a, "normalized", w, !tok.special);
      if (!unicode::is_valid_utf8(tok.content)) L.fail(w + ".content", "not valid UTF-8");
      t->added_by_id[tok.id] = t->added.size();
      t->added_by_content[tok.content] = tok.id;
      limit = std::max(limit, static_cast<size_t>(tok.id) + 1);
      t->added.push_back(std::move(tok));
    }
  }
  std::vector<AddedToken> raw, norm;
  std::vector<std::string> raw_pat, norm_pat;
  for (const AddedToken& a : t->added) {
    if (a.content.empty()) continue;
    if (a.normalized) {
      norm.push_back(a);
      norm_pat.push_back(t->normalizer ? t->normalizer->normalize(a.content) : a.content);
    } else {
      raw.push_back(a);
      raw_pat.push_back(a.content);
    }
  }
  t->raw_matcher = std::make_unique<AddedTokenMatcher>(std::move(raw), std::move(raw_pat));
  t->normalized_matcher = std::make_unique<AddedTokenMatcher>(std::move(norm), std::move(norm_pat));
  t->vocab_size_ = limit;

  if (present("post_processor")) t->post_processor = L.post_processor(j["post_processor"], "post_processor");

  auto resolve = [&](const std::optional<std::string>& name, const char* what) -> std::optional<TokenId> {
    if (!name) return std::nullopt;
    auto id = t->token_to_id(*name);
    if (!id)
      throw TokenizerError(fmt::format("{}: the {} token '{}' named by tokenizer_config.json is not in the vocabulary",
                                       source, what, *name));
    return id;
  };
  t->specials.bos = resolve(specials.bos_token, "bos");
  t->specials.eos = resolve(specials.eos_token, "eos");
  t->specials.pad = resolve(specials.pad_token, "pad");
  if (!t->specials.pad) t->specials.pad = t->specials.eos;
  t->hash = hex_digest(std::string("tokenizer.json\n") + std::string(json_text) + "\n" + specials.raw);
  return t;
}

}  // namespace

std::unique_ptr<Tokenizer> load_hf_tokenizer(std::string_view json_text, const std::string& source,
                                             const SpecialTokenConfig& specials) {
  try {
    return load_hf_tokenizer_unchecked(json_text, source, specials);
  } catch (const nlohmann::json::exception& e) {
    // A value of the wrong JSON type somewhere we did not check explicitly.
    throw TokenizerError(fmt::format("{}: unexpected JSON value: {}", source, io::json_error_text(e)));
  }
}

}  // namespace autotrain::tokenizer
