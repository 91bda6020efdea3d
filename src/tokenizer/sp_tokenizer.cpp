#include "sp_tokenizer.h"

#include <fmt/format.h>
#include <sentencepiece_processor.h>

#include "unicode.h"

namespace autotrain::tokenizer {

namespace {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(const std::string& bytes, const std::string& source, const SpecialTokenConfig& specials) {
    auto status = sp_.LoadFromSerializedProto(bytes);
    if (!status.ok()) {
      // The library's text for bytes that are no model names its own source line
      // ("Internal: ./src/sentencepiece_processor.cc(232) [model_proto->ParseFromArray(...)]").
      const std::string why = status.ToString();
      if (why.find("ParseFromArray") != std::string::npos)
        throw TokenizerError(fmt::format("{}: not a tokenizer file: neither JSON (tokenizer.json) nor a SentencePiece "
                                         "model (tokenizer.model); give the model folder or one of those files",
                                         source));
      throw TokenizerError(fmt::format("{}: not a usable SentencePiece model ({})", source, why));
    }
    auto id_of = [&](int id) -> std::optional<TokenId> { return id >= 0 ? std::optional<TokenId>(id) : std::nullopt; };
    auto named = [&](const std::optional<std::string>& name, std::optional<TokenId> fallback, const char* what) {
      if (!name) return fallback;
      int id = sp_.PieceToId(*name);
      if (sp_.IdToPiece(id) != *name)
        throw TokenizerError(fmt::format("{}: the {} token '{}' named by tokenizer_config.json is not in the model",
                                         source, what, *name));
      return std::optional<TokenId>(id);
    };
    ids_.bos = named(specials.bos_token, id_of(sp_.bos_id()), "bos");
    ids_.eos = named(specials.eos_token, id_of(sp_.eos_id()), "eos");
    ids_.pad = named(specials.pad_token, id_of(sp_.pad_id()), "pad");
    if (!ids_.pad) ids_.pad = ids_.eos;
    // transformers' LlamaTokenizer: BOS yes, EOS no, unless tokenizer_config.json says otherwise.
    add_bos_ = specials.add_bos_token.value_or(true) && ids_.bos;
    add_eos_ = specials.add_eos_token.value_or(false) && ids_.eos;
    hash_ = hex_digest("sentencepiece\n" + bytes + "\n" + specials.raw);
  }

  std::vector<TokenId> encode(std::string_view input, bool add_special_tokens) const override {
    // The Python package takes str: invalid UTF-8 reaches it already replaced by U+FFFD.
    std::string repaired;
    const std::string_view text = unicode::valid_utf8_view(input, repaired);
    std::vector<int> ids;
    auto status = sp_.Encode(text, &ids);
    if (!status.ok()) throw TokenizerError("sentencepiece encode failed: " + status.ToString());
    std::vector<TokenId> out;
    out.reserve(ids.size() + 2);
    if (add_special_tokens && add_bos_) out.push_back(*ids_.bos);
    out.insert(out.end(), ids.begin(), ids.end());
    if (add_special_tokens && add_eos_) out.push_back(*ids_.eos);
    return out;
  }

  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens) const override {
    std::vector<int> keep;
    keep.reserve(ids.size());
    for (TokenId id : ids) {
      if (id < 0 || id >= sp_.GetPieceSize())
        throw TokenizerError(fmt::format("cannot decode id {}: not in the vocabulary (ids are 0..{})", id,
                                         sp_.GetPieceSize() - 1));
      if (skip_special_tokens && is_special(id)) continue;
      keep.push_back(id);
    }
    std::string text;
    auto status = sp_.Decode(keep, &text);
    if (!status.ok()) throw TokenizerError("sentencepiece decode failed: " + status.ToString());
    return text;
  }

  std::optional<TokenId> token_to_id(std::string_view token) const override {
    int id = sp_.PieceToId(token);
    if (sp_.IdToPiece(id) != token) return std::nullopt;
    return id;
  }
  std::optional<std::string> id_to_token(TokenId id) const override {
    if (id < 0 || id >= sp_.GetPieceSize()) return std::nullopt;
    return sp_.IdToPiece(id);
  }
  bool is_special(TokenId id) const override {
    return id >= 0 && id < sp_.GetPieceSize() && (sp_.IsControl(id) || sp_.IsUnknown(id));
  }
  size_t vocab_size() const override { return static_cast<size_t>(sp_.GetPieceSize()); }
  SpecialIds special_ids() const override { return ids_; }
  std::string content_hash() const override { return hash_; }
  std::string describe() const override { return "sentencepiece model"; }

 private:
  sentencepiece::SentencePieceProcessor sp_;
  SpecialIds ids_;
  bool add_bos_ = false, add_eos_ = false;
  std::string hash_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& model_bytes, const std::string& source,
                                              const SpecialTokenConfig& specials) {
  return std::make_unique<SentencePieceTokenizer>(model_bytes, source, specials);
}

}  // namespace autotrain::tokenizer
