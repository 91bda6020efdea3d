#include "added_vocab.h"

#include <algorithm>

#include "unicode.h"

namespace autotrain::tokenizer {

namespace {

// Last character of `s` (valid UTF-8), or 0 when empty.
char32_t last_char(std::string_view s) {
  if (s.empty()) return 0;
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  const char* p = s.data() + i;
  return unicode::next_code_point(p);
}

char32_t first_char(std::string_view s) {
  if (s.empty()) return 0;
  const char* p = s.data();
  return unicode::next_code_point(p);
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns)
    : tokens_(std::move(tokens)), patterns_(std::move(patterns)), by_first_byte_(256) {
  for (size_t i = 0; i < patterns_.size(); ++i) {
    if (patterns_[i].empty()) continue;
    by_first_byte_[static_cast<unsigned char>(patterns_[i][0])].push_back(static_cast<int>(i));
  }
  for (auto& v : by_first_byte_)
    std::stable_sort(v.begin(), v.end(), [this](int a, int b) { return patterns_[a].size() > patterns_[b].size(); });
}

int AddedTokenMatcher::find(std::string_view text, size_t from, size_t* at) const {
  for (size_t i = from; i < text.size(); ++i) {
    const auto& cands = by_first_byte_[static_cast<unsigned char>(text[i])];
    for (int c : cands) {
      const std::string& p = patterns_[c];
      if (text.compare(i, p.size(), p) == 0) {
        *at = i;
        return c;
      }
    }
  }
  return -1;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  size_t start_offset = 0;
  size_t search = 0;
  size_t at = 0;
  for (int idx; search < text.size() && (idx = find(text, search, &at)) >= 0;) {
    const AddedToken& tok = tokens_[idx];
    size_t start = at;
    size_t stop = at + patterns_[idx].size();
    search = stop;  // the next match is searched after this one, whatever strip does below
    if (tok.single_word) {
      // Only a whole word: no alphanumeric character directly before or after.
      bool start_ok = start == 0 || !unicode::is_alphanumeric(last_char(text.substr(0, start)));
      bool stop_ok = stop == text.size() || !unicode::is_alphanumeric(first_char(text.substr(stop)));
      if (!start_ok || !stop_ok) continue;
    }
    if (tok.lstrip) {
      size_t s = start;
      while (s > 0) {
        size_t k = s - 1;
        while (k > 0 && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
        const char* p = text.data() + k;
        if (!unicode::is_whitespace(unicode::next_code_point(p))) break;
        s = k;
      }
      start = std::max(s, start_offset);  // spaces already taken by the previous match stay there
    }
    if (tok.rstrip) {
      const char* p = text.data() + stop;
      const char* end = text.data() + text.size();
      while (p < end) {
        const char* q = p;
        if (!unicode::is_whitespace(unicode::next_code_point(q))) break;
        p = q;
      }
      stop = static_cast<size_t>(p - text.data());
    }
    if (start_offset < start) out.push_back({start_offset, start, std::nullopt});
    out.push_back({start, stop, tok.id});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), std::nullopt});
}

}  // namespace autotrain::tokenizer
