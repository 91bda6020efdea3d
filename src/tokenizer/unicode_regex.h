// Unicode regular expressions for the `Split` pre-tokenizer and the `Replace` normalizer and
// decoder, on PCRE2 with UTF and UCP (JIT-compiled). The Hugging Face library uses Oniguruma;
// the two agree on the syntax tokenizer files use (`\p{L}`, `\s`, lookahead, `(?i:...)`), except
// that Oniguruma's `\s` also matches U+0085, which we add when compiling.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace autotrain::tokenizer {

struct MatchRange {
  size_t start;
  size_t end;
};

class Regex {
 public:
  // Throws std::invalid_argument naming the pattern, the offset and PCRE2's reason.
  explicit Regex(std::string_view pattern);
  // A regex matching `literal` exactly.
  static Regex literal(std::string_view literal);

  // Every non-overlapping match in `text` (valid UTF-8), left to right, appended to `out`.
  // An empty match right after the previous match is skipped, as Oniguruma's iterator does.
  void find_all(std::string_view text, std::vector<MatchRange>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<void> code_;  // pcre2_code_8, freed with pcre2_code_free_8
};

}  // namespace autotrain::tokenizer
