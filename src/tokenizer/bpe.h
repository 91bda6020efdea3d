// The BPE model of `tokenizer.json`: characters of a piece are looked up in the vocabulary,
// then the adjacent pair with the lowest merge rank is merged (leftmost first on ties) until no
// merge applies, exactly as huggingface/tokenizers' `merge_word` does. Results are cached per
// piece: real text repeats its words, and the cache is what makes encoding fast.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "autotrain/tokenizer/tokenizer.h"

namespace autotrain::tokenizer {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;  // empty = none
  std::string end_of_word_suffix;         // empty = none
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel {
 public:
  // Throws std::invalid_argument when a merge's parts or result are not in the vocabulary, or
  // the unk token is not.
  BpeModel(StringMap<TokenId> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
           BpeOptions options);

  // Appends the ids of `piece` to `out`.
  void tokenize(std::string_view piece, std::vector<TokenId>& out) const;

  std::optional<TokenId> token_to_id(std::string_view token) const;
  const std::string* id_to_token(TokenId id) const;
  // 1 + the largest id in the vocabulary (0 when empty).
  size_t id_limit() const { return id_to_token_.size(); }

 private:
  void tokenize_uncached(std::string_view piece, std::vector<TokenId>& out) const;

  struct Merge {
    uint32_t rank;
    TokenId new_id;
  };
  static uint64_t pair_key(TokenId a, TokenId b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  const Merge* find_merge(TokenId a, TokenId b) const;

  StringMap<TokenId> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> id_present_;
  // Open addressing on pair_key (a power-of-two table, linear probing): the merge loop's hot lookup.
  std::vector<uint64_t> merge_keys_;
  std::vector<Merge> merge_values_;
  uint64_t merge_mask_ = 0;
  BpeOptions options_;
  std::optional<TokenId> unk_id_;
  std::array<std::optional<TokenId>, 256> byte_ids_{};  // "<0xAB>" tokens, for byte_fallback

  // Piece -> ids. Each thread keeps its own cache (of the few models it used last), so batch
  // encoding threads never contend for a lock or a cache line.
  static constexpr size_t kCacheCapacity = 1 << 17;
  static constexpr size_t kMaxCachedPiece = 128;
  using WordCache = StringMap<std::vector<TokenId>>;
  WordCache& thread_cache() const;
  uint64_t cache_key_;  // unique per model instance (an address could be reused)
};

}  // namespace autotrain::tokenizer
