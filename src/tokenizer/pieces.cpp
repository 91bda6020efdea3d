#include "pieces.h"

namespace autotrain::tokenizer {

void regex_spans(const Regex& re, std::string_view text, bool invert, std::vector<Span>& spans) {
  spans.clear();
  thread_local std::vector<MatchRange> matches;
  matches.clear();
  re.find_all(text, matches);
  size_t prev = 0;
  for (const MatchRange& m : matches) {
    if (prev != m.start) spans.push_back({prev, m.start, invert});
    spans.push_back({m.start, m.end, !invert});
    prev = m.end;
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), invert});
}

void split_piece(const Piece& piece, std::vector<Span>& spans, SplitBehavior behavior, Pieces& out) {
  // Merge the spans in place into the ranges to keep (is_match then means "drop").
  std::vector<Span>& s = spans;
  switch (behavior) {
    case SplitBehavior::Removed:
    case SplitBehavior::Isolated:
      break;
    case SplitBehavior::MergedWithPrevious: {
      // A match joins the piece before it (unless that piece was itself a match).
      size_t n = 0;
      bool previous_match = false;
      for (const Span sp : s) {  // a copy: s is rewritten in place
        if (sp.is_match && !previous_match && n > 0) {
          s[n - 1].end = sp.end;
        } else {
          s[n++] = {sp.start, sp.end, false};
        }
        previous_match = sp.is_match;
      }
      s.resize(n);
      break;
    }
    case SplitBehavior::MergedWithNext: {
      // Mirror image: a match joins the piece after it.
      std::vector<Span> r;
      r.reserve(s.size());
      bool previous_match = false;
      for (auto it = s.rbegin(); it != s.rend(); ++it) {
        if (it->is_match && !previous_match && !r.empty()) {
          r.back().start = it->start;
        } else {
          r.push_back({it->start, it->end, false});
        }
        previous_match = it->is_match;
      }
      s.assign(r.rbegin(), r.rend());
      break;
    }
    case SplitBehavior::Contiguous: {
      // Consecutive spans of the same kind become one.
      size_t n = 0;
      bool previous_match = false;
      for (const Span sp : s) {  // a copy: s is rewritten in place
        if (sp.is_match == previous_match && n > 0) {
          s[n - 1].end = sp.end;
        } else {
          s[n++] = {sp.start, sp.end, false};
        }
        previous_match = sp.is_match;
      }
      s.resize(n);
      break;
    }
  }
  for (const Span sp : s) {  // a copy: s is rewritten in place
    if (sp.start == sp.end) continue;
    if (behavior == SplitBehavior::Removed && sp.is_match) continue;
    out.push_back({piece.text.substr(sp.start, sp.end - sp.start), piece.at_start && sp.start == 0});
  }
}

}  // namespace autotrain::tokenizer
