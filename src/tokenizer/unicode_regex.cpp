#define PCRE2_CODE_UNIT_WIDTH 8
#include "unicode_regex.h"

#include <pcre2.h>

#include <stdexcept>

#include "autotrain/tokenizer/tokenizer.h"
#include "unicode.h"

namespace autotrain::tokenizer {

namespace {

// Oniguruma's word class (`\w` in tokenizers' Split patterns) is Unicode's: Alphabetic, marks,
// decimal digits and connector punctuation (not the joiners: tokenizers splits at a ZWJ).
// PCRE2 10.42's UCP `\w` is letters, numbers and '_' only, so "a\u0301b" or a circled letter
// would split where tokenizers does not.
// PCRE2 10.42's tables are Unicode 14.0, tokenizers' Oniguruma's 16.0: the letters and decimal
// digits added since (CJK extension I, Garay, ...) are added as code point ranges.
const std::string& onig_digit() {
  static const std::string items = "\\p{Nd}" + unicode::newer_digits_class_items();
  return items;
}
const std::string& onig_word() {
  static const std::string items =
      "\\p{Alphabetic}\\p{M}\\p{Pc}" + onig_digit() + unicode::newer_letters_class_items();
  return items;
}

// Oniguruma's `\s` is the White_Space property, which includes U+0085 (NEXT LINE); PCRE2's
// UCP `\s` may not. Rewrite `\s` / `\S`, `\d` / `\D` and `\w` / `\W` so both engines agree.
std::string onig_to_pcre2(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 16);
  int class_depth = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[i + 1];
      ++i;
      if (n == 's') {
        out += class_depth > 0 ? "\\s\\x{85}" : "[\\s\\x{85}]";
      } else if (n == 'S' && class_depth == 0) {
        out += "[^\\s\\x{85}]";
      } else if (n == 'd') {
        out += class_depth > 0 ? onig_digit() : "[" + onig_digit() + "]";
      } else if (n == 'D' && class_depth == 0) {
        out += "[^" + onig_digit() + "]";
      } else if (n == 'w') {
        out += class_depth > 0 ? onig_word() : "[" + onig_word() + "]";
      } else if (n == 'W' && class_depth == 0) {
        out += "[^" + onig_word() + "]";
      } else {
        out += '\\';
        out += n;
      }
      continue;
    }
    if (c == '[') {
      ++class_depth;
      out += c;
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == ']' && class_depth > 0) --class_depth;
    out += c;
  }
  return out;
}

struct ThreadMatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ThreadMatchState() {
    data = pcre2_match_data_create(32, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
    if (context && stack) pcre2_jit_stack_assign(context, nullptr, stack);
    // A pathological pattern from a tokenizer file must fail, not hang the process.
    if (context) pcre2_set_match_limit(context, 5'000'000);
  }
  ~ThreadMatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
};

ThreadMatchState& match_state() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

Regex::Regex(std::string_view pattern) : pattern_(pattern) {
  std::string translated = onig_to_pcre2(pattern);
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw std::invalid_argument("invalid regex '" + std::string(pattern) + "' at offset " + std::to_string(offset) +
                                ": " + reinterpret_cast<const char*>(msg));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
  code_ = std::shared_ptr<void>(code, [](void* c) { pcre2_code_free(static_cast<pcre2_code*>(c)); });
}

Regex Regex::literal(std::string_view literal) {
  std::string p;
  const char* it = literal.data();
  const char* end = it + literal.size();
  while (it < end) {
    const char* start = it;
    char32_t c = unicode::next_code_point(it);
    if (c < 0x80 && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
      char buf[16];
      snprintf(buf, sizeof buf, "\\x{%x}", static_cast<unsigned>(c));
      p += buf;
    } else {
      p.append(start, it);
    }
  }
  Regex r(p);
  r.pattern_ = std::string(literal);
  return r;
}

void Regex::find_all(std::string_view text, std::vector<MatchRange>& out) const {
  auto* code = static_cast<pcre2_code*>(code_.get());
  ThreadMatchState& st = match_state();
  size_t pos = 0;
  size_t last_match_end = static_cast<size_t>(-1);
  while (pos <= text.size()) {
    int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos, PCRE2_NO_UTF_CHECK,
                         st.data, st.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0 && rc != 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw TokenizerError("regex '" + pattern_ + "' failed on this text: " + reinterpret_cast<const char*>(msg));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    size_t s = ov[0], e = ov[1];
    if (s == e) {
      if (s != last_match_end) out.push_back({s, e});
      last_match_end = e;
      if (e >= text.size()) break;
      pos = e + unicode::sequence_length(static_cast<unsigned char>(text[e]));
      continue;
    }
    out.push_back({s, e});
    last_match_end = e;
    pos = e;
  }
}

}  // namespace autotrain::tokenizer
