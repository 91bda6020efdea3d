// Pre-tokenizers of `tokenizer.json`: they cut the (normalized) text into the pieces that the
// model tokenizes independently. Semantics follow huggingface/tokenizers 0.23.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autotrain/tokenizer/tokenizer.h"
#include "pieces.h"
#include "unicode_regex.h"

namespace autotrain::tokenizer {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces every piece by its splits; empty pieces are dropped.
  virtual void split(Pieces& pieces) const = 0;
};

// byte_level_chars() (GPT-2's byte-to-character table) is declared in the public header.
// Its inverse: code point -> byte, or -1.
int byte_level_byte(char32_t c);

// `Split`: cut at the matches of a regex or a literal string.
class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Regex pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void split(Pieces& pieces) const override;

 private:
  Regex pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// `Punctuation`: ASCII punctuation and Unicode P* characters.
class PunctuationPreTokenizer final : public PreTokenizer {
 public:
  explicit PunctuationPreTokenizer(SplitBehavior behavior) : behavior_(behavior) {}
  void split(Pieces& pieces) const override;

 private:
  SplitBehavior behavior_;
};

// `Digits`: runs of numeric characters (or each one alone).
class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual_digits) : individual_(individual_digits) {}
  void split(Pieces& pieces) const override;

 private:
  bool individual_;
};

// `ByteLevel`: optional prefix space, GPT-2's split regex, then bytes to characters.
// The regex is fixed by the format, so it is matched by hand (the hot path of Falcon/GPT-2).
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}
  void split(Pieces& pieces) const override;

 private:
  bool add_prefix_space_;
  bool use_regex_;
};

// `Whitespace`: `\w+|[^\w\s]+`, whitespace dropped.
class WhitespacePreTokenizer final : public PreTokenizer {
 public:
  void split(Pieces& pieces) const override;
};

// `WhitespaceSplit` (split on whitespace, dropped) and `CharDelimiterSplit` (on one character).
class CharSplitPreTokenizer final : public PreTokenizer {
 public:
  explicit CharSplitPreTokenizer(std::optional<char32_t> delimiter) : delimiter_(delimiter) {}
  void split(Pieces& pieces) const override;

 private:
  std::optional<char32_t> delimiter_;  // none = any whitespace
};

enum class PrependScheme { Always, First, Never };

// `Metaspace`: spaces become the replacement character (default U+2581), optionally prepended,
// and the text is cut before each replacement character.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split);
  void split(Pieces& pieces) const override;

 private:
  char32_t replacement_;
  std::string replacement_utf8_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void split(Pieces& pieces) const override {
    for (const auto& s : steps_) s->split(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

// Splits on GPT-2's pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
// (as Oniguruma matches it), calling `emit(start, end)` for every match. Exposed for tests.
template <typename Emit>
void gpt2_split(std::string_view text, Emit emit);

}  // namespace autotrain::tokenizer

namespace autotrain::tokenizer {

namespace detail {
enum class Gpt2Class : unsigned char { Letter, Number, Space, Other };
inline Gpt2Class gpt2_class(char32_t c) {
  if (unicode::is_letter(c)) return Gpt2Class::Letter;
  if (unicode::is_numeric(c)) return Gpt2Class::Number;
  if (unicode::is_whitespace(c)) return Gpt2Class::Space;
  return Gpt2Class::Other;
}
}  // namespace detail

template <typename Emit>
void gpt2_split(std::string_view text, Emit emit) {
  using detail::Gpt2Class;
  // Decode once: positions and classes of every character.
  thread_local std::vector<char32_t> cps;
  thread_local std::vector<size_t> offs;
  thread_local std::vector<Gpt2Class> cls;
  cps.clear();
  offs.clear();
  cls.clear();
  const char* base = text.data();
  const char* p = base;
  const char* end = base + text.size();
  while (p < end) {
    offs.push_back(static_cast<size_t>(p - base));
    char32_t c = unicode::next_code_point(p);
    cps.push_back(c);
    cls.push_back(detail::gpt2_class(c));
  }
  const size_t n = cps.size();
  offs.push_back(text.size());
  size_t i = 0;
  while (i < n) {
    char32_t c = cps[i];
    // 's 't 're 've 'm 'll 'd (case-sensitive, tried first)
    if (c == '\'' && i + 1 < n) {
      char32_t c1 = cps[i + 1];
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        emit(offs[i], offs[i + 2]);
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        char32_t c2 = cps[i + 2];
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
          emit(offs[i], offs[i + 3]);
          i += 3;
          continue;
        }
      }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional ASCII space, then a run of one class.
    size_t j = (c == ' ' && i + 1 < n && cls[i + 1] != Gpt2Class::Space) ? i + 1 : i;
    Gpt2Class k = cls[j];
    if (k != Gpt2Class::Space) {
      size_t e = j + 1;
      while (e < n && cls[e] == k) ++e;
      emit(offs[i], offs[e]);
      i = e;
      continue;
    }
    // `\s+(?!\S)`: whitespace not followed by a non-space, so a run before a word leaves its
    // last character to the word; else `\s+`.
    size_t e = i + 1;
    while (e < n && cls[e] == Gpt2Class::Space) ++e;
    if (e < n && e - i > 1) --e;
    emit(offs[i], offs[e]);
    i = e;
  }
}

}  // namespace autotrain::tokenizer
