// Added tokens of `tokenizer.json` (`added_tokens`): matched in the text before anything else
// (leftmost-longest), so that e.g. "<|endoftext|>" inside a document becomes its id and never
// reaches the pre-tokenizer.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "autotrain/tokenizer/tokenizer.h"

namespace autotrain::tokenizer {

struct AddedToken {
  std::string content;
  TokenId id = 0;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = true;
};

// Text between matches (id empty) and the matches themselves, in order.
struct Segment {
  size_t start;
  size_t end;
  std::optional<TokenId> id;
};

// Finds the tokens of one set (those matched on raw text, or on normalized text).
class AddedTokenMatcher {
 public:
  // `patterns[i]` is what to look for (the token's content, normalized for the second set).
  AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns);
  bool empty() const { return tokens_.empty(); }
  // Cuts `text` into segments the way the reference's `find_matches` does, honouring
  // single_word, lstrip and rstrip.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  // Leftmost-longest match at or after `from`: index into tokens_, or -1.
  int find(std::string_view text, size_t from, size_t* at) const;

  std::vector<AddedToken> tokens_;
  std::vector<std::string> patterns_;
  std::vector<std::vector<int>> by_first_byte_;  // candidates, longest first
};

}  // namespace autotrain::tokenizer
