// One interface for every tokenizer a model folder can bring: Hugging Face `tokenizer.json`
// (BPE with its normalizers, pre-tokenizers, post-processors and decoders) and SentencePiece
// `tokenizer.model`. Ids must equal what the Hugging Face `tokenizers` library (resp. the
// `sentencepiece` package) produces for the same text: one id off and the model trains on a
// different text than the one it will see.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace autotrain::tokenizer {

using TokenId = int32_t;

// Thrown for files we cannot read or configurations we do not support. The message names the
// file, the component (e.g. `pre_tokenizer.pretokenizers[2].type`) and how to fix it.
class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SpecialIds {
  std::optional<TokenId> bos;
  std::optional<TokenId> eos;
  // The configured pad token, else eos (what AutoTrain does when a tokenizer has none).
  std::optional<TokenId> pad;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text` (UTF-8; invalid sequences are replaced by U+FFFD the way Python's
  // `bytes.decode("utf-8", "replace")` does, since the reference libraries only take valid text).
  // `add_special_tokens` applies the post-processor (BOS/EOS templates), the Hugging Face default.
  virtual std::vector<TokenId> encode(std::string_view text, bool add_special_tokens = true) const = 0;

  // encode() of every text, on `num_threads` threads (0 = all hardware threads). Same ids as
  // calling encode() on each text in turn.
  std::vector<std::vector<TokenId>> encode_batch(std::span<const std::string> texts, bool add_special_tokens = true,
                                                 unsigned num_threads = 0) const;

  // Text of `ids`. Unknown ids are an error (TokenizerError), as in the reference.
  virtual std::string decode(std::span<const TokenId> ids, bool skip_special_tokens = false) const = 0;

  virtual std::optional<TokenId> token_to_id(std::string_view token) const = 0;
  virtual std::optional<std::string> id_to_token(TokenId id) const = 0;
  // Whether `id` is a special token (skipped by decode(skip_special_tokens=true)).
  virtual bool is_special(TokenId id) const = 0;

  // Number of ids, added tokens included (`len(tokenizer)` in transformers): 1 + the largest id.
  virtual size_t vocab_size() const = 0;
  virtual SpecialIds special_ids() const = 0;

  // A hex digest of everything that decides the ids (the tokenizer file and the special-token
  // configuration). Stable across runs and machines; the data cache uses it to notice a change.
  virtual std::string content_hash() const = 0;

  // "tokenizer.json (BPE)", "sentencepiece (unigram)", ...: for messages.
  virtual std::string describe() const = 0;
};

// Loads a tokenizer from a model folder (tokenizer.json preferred, else tokenizer.model), a
// tokenizer.json file or a SentencePiece .model file. A tokenizer_config.json and
// special_tokens_map.json beside it supply bos/eos/pad names. Throws TokenizerError.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path);

// GPT-2's byte-to-character table (`bytes_to_unicode`), the alphabet byte-level BPE vocabularies
// are written in: every byte becomes a printable character (0x20 -> 'Ġ', 0x0A -> 'Ċ'). For code
// that writes tokenizer.json files (the tiny default, tests).
const std::array<std::string, 256>& byte_level_chars();

}  // namespace autotrain::tokenizer
