// The text between added tokens, cut into pieces by the pre-tokenizers, then handed to the
// model one piece at a time.
#pragma once

#include <string>
#include <vector>

#include "unicode_regex.h"

namespace autotrain::tokenizer {

struct Piece {
  std::string text;
  // Starts at offset 0 of the encoded text (Metaspace's prepend_scheme "first" needs it).
  bool at_start = false;
};
using Pieces = std::vector<Piece>;

// `tokenizers`' SplitDelimiterBehavior: what becomes of the matches of a pattern.
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct Span {
  size_t start;
  size_t end;
  bool is_match;
};

// Cuts `piece` along `spans` (which cover it in order) the way `behavior` says, appending the
// non-empty results to `out`.
void split_piece(const Piece& piece, std::vector<Span>& spans, SplitBehavior behavior, Pieces& out);

// Spans of a regex's matches and the gaps between them.
void regex_spans(const Regex& re, std::string_view text, bool invert, std::vector<Span>& spans);

// Spans where each character satisfying `pred` is a match of its own and the characters between
// form one gap (how `tokenizers` applies a `fn(char) -> bool` pattern).
template <typename Pred>
void char_spans(std::string_view text, Pred pred, std::vector<Span>& spans);

}  // namespace autotrain::tokenizer

#include "unicode.h"

namespace autotrain::tokenizer {

template <typename Pred>
void char_spans(std::string_view text, Pred pred, std::vector<Span>& spans) {
  spans.clear();
  const char* base = text.data();
  const char* p = base;
  const char* end = base + text.size();
  size_t gap_start = 0;
  while (p < end) {
    size_t s = static_cast<size_t>(p - base);
    char32_t c = unicode::next_code_point(p);
    if (pred(c)) {
      if (gap_start < s) spans.push_back({gap_start, s, false});
      size_t e = static_cast<size_t>(p - base);
      spans.push_back({s, e, true});
      gap_start = e;
    }
  }
  if (gap_start < text.size()) spans.push_back({gap_start, text.size(), false});
}

}  // namespace autotrain::tokenizer
