#include "normalizers.h"

#include "unicode.h"

namespace autotrain::tokenizer {

std::string UnicodeNormalizer::normalize(std::string text) const {
  switch (form_) {
    case UnicodeForm::NFC: return unicode::nfc(text);
    case UnicodeForm::NFD: return unicode::nfd(text);
    case UnicodeForm::NFKC: return unicode::nfkc(text);
    case UnicodeForm::NFKD: return unicode::nfkd(text);
  }
  return text;
}

std::string LowercaseNormalizer::normalize(std::string text) const { return unicode::lowercase(text); }

std::string StripNormalizer::normalize(std::string text) const {
  const char* base = text.data();
  const char* end = base + text.size();
  size_t start = 0, stop = text.size();
  if (left_) {
    const char* p = base;
    while (p < end) {
      const char* q = p;
      if (!unicode::is_whitespace(unicode::next_code_point(q))) break;
      p = q;
    }
    start = static_cast<size_t>(p - base);
  }
  if (right_) {
    // Walk forward remembering where the trailing whitespace run begins.
    const char* p = base + start;
    const char* run = nullptr;
    while (p < end) {
      const char* q = p;
      bool ws = unicode::is_whitespace(unicode::next_code_point(q));
      if (ws && !run) run = p;
      if (!ws) run = nullptr;
      p = q;
    }
    if (run) stop = static_cast<size_t>(run - base);
  }
  return text.substr(start, stop - start);
}

std::string PrependNormalizer::normalize(std::string text) const {
  if (text.empty()) return text;
  return prefix_ + text;
}

std::string replace_all(const Regex& pattern, std::string_view text, std::string_view content) {
  thread_local std::vector<MatchRange> matches;
  matches.clear();
  pattern.find_all(text, matches);
  if (matches.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t prev = 0;
  for (const MatchRange& m : matches) {
    out.append(text.substr(prev, m.start - prev));
    out.append(content);
    prev = m.end;
  }
  out.append(text.substr(prev));
  return out;
}

std::string ReplaceNormalizer::normalize(std::string text) const { return replace_all(pattern_, text, content_); }

}  // namespace autotrain::tokenizer
