#include "unicode.h"

#include <fmt/format.h>

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace autotrain::tokenizer::unicode {

namespace {

struct CodePointRange {
  char32_t first;
  char32_t last;
};
#include "unicode_tables.inc"

template <size_t N>
bool in_ranges(const CodePointRange (&ranges)[N], char32_t c) {
  auto it = std::upper_bound(std::begin(ranges), std::end(ranges), c,
                             [](char32_t x, const CodePointRange& r) { return x < r.first; });
  return it != std::begin(ranges) && c <= std::prev(it)->last;
}

}  // namespace

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

namespace {

// Length of the well-formed sequence at s[i], or 0 when ill-formed; `*subpart` receives the
// length of the maximal prefix that could still have started a well-formed sequence (>= 1).
size_t well_formed_length(std::string_view s, size_t i, size_t* subpart) {
  auto b0 = static_cast<unsigned char>(s[i]);
  *subpart = 1;
  if (b0 < 0x80) return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte (Unicode table 3-7)
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) return 0;
    auto b = static_cast<unsigned char>(s[i + k]);
    bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return 0;
    *subpart = k + 1;
  }
  return need;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII runs dominate real text: skip 8 bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= s.size()) break;
    size_t sub;
    size_t n = well_formed_length(s, i, &sub);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t sub;
    size_t n = well_formed_length(s, i, &sub);
    if (n) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      i += sub;
    }
  }
  return out;
}

bool is_whitespace(char32_t c) {
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0 || in_ranges(kLettersAfter14, c);
}

bool is_numeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0 || in_ranges(kNumbersAfter14, c);
}

bool is_alphanumeric(char32_t c) {
  if (c < 0x80) return is_letter(c) || is_numeric(c);
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC) || is_letter(c) || is_numeric(c);
}

bool is_punctuation(char32_t c) {
  if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                       (c >= 0x7B && c <= 0x7E);
  // Recategorised since 8.0: U+166D CANADIAN SYLLABICS CHI SIGN (now So), U+111C9 SHARADA
  // SANDHI MARK (now Mn).
  if (c == 0x166D || c == 0x111C9) return true;
  if ((U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_P_MASK) == 0) return false;
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(c), age);
  return age[0] <= 8;
}

namespace {

template <size_t N>
std::string class_items(const CodePointRange (&ranges)[N], char32_t skip_first = 0) {
  std::string out;
  for (const auto& r : ranges)
    if (r.first != skip_first)
      out += fmt::format("\\x{{{:X}}}-\\x{{{:X}}}", static_cast<uint32_t>(r.first), static_cast<uint32_t>(r.last));
  return out;
}

}  // namespace

std::string newer_letters_class_items() { return class_items(kLettersAfter14); }
// The Kaktovik numerals (U+1D2C0..1D2D3) are No, the only numbers of the table that are not Nd.
std::string newer_digits_class_items() { return class_items(kNumbersAfter14, 0x1D2C0); }

bool is_word(char32_t c) {
  if (c < 0x80) return is_letter(c) || is_numeric(c) || c == '_';
  // Letters and numbers newer than the system's ICU (Debian 12's knows Unicode 15.0, the
  // reference's regex engine 16.0) are word characters too.
  // (Not the Kaktovik numerals U+1D2C0..1D2D3: No, which ICU 72 already knows, and not a word
  // character.)
  if (in_ranges(kLettersAfter14, c) || (in_ranges(kNumbersAfter14, c) && (c < 0x1D2C0 || c > 0x1D2D3))) return true;
  auto mask = U_GET_GC_MASK(static_cast<UChar32>(c));
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC) ||
         (mask & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0 ||
         u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_JOIN_CONTROL);
}

namespace {

bool is_ascii(std::string_view s) {
  for (char ch : s)
    if (static_cast<unsigned char>(ch) >= 0x80) return false;
  return true;
}

using Getter = const icu::Normalizer2* (*)(UErrorCode&);

std::string normalize(std::string_view s, Getter get) {
  if (is_ascii(s)) return std::string(s);  // ASCII is invariant under every normalization form
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = get(status);
  if (U_FAILURE(status)) throw std::runtime_error(std::string("ICU normalizer unavailable: ") + u_errorName(status));
  icu::UnicodeString in = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  icu::UnicodeString result = n->normalize(in, status);
  if (U_FAILURE(status)) throw std::runtime_error(std::string("ICU normalization failed: ") + u_errorName(status));
  std::string out;
  result.toUTF8String(out);
  return out;
}

}  // namespace

std::string nfc(std::string_view s) { return normalize(s, &icu::Normalizer2::getNFCInstance); }
std::string nfd(std::string_view s) { return normalize(s, &icu::Normalizer2::getNFDInstance); }
std::string nfkc(std::string_view s) { return normalize(s, &icu::Normalizer2::getNFKCInstance); }
std::string nfkd(std::string_view s) { return normalize(s, &icu::Normalizer2::getNFKDInstance); }

std::string lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const char* p = s.data();
  const char* end = p + s.size();
  while (p < end) {
    char32_t c = next_code_point(p);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
      continue;
    }
    // One character at a time, so that no context rule (final sigma) applies: Rust's
    // char::to_lowercase has none.
    UChar src[2];
    int32_t src_len = 0;
    U16_APPEND_UNSAFE(src, src_len, static_cast<UChar32>(c));
    UChar dst[8];
    UErrorCode status = U_ZERO_ERROR;
    int32_t n = u_strToLower(dst, 8, src, src_len, "", &status);
    if (U_FAILURE(status)) {
      append_utf8(out, c);
      continue;
    }
    for (int32_t k = 0; k < n;) {
      UChar32 lc;
      U16_NEXT(dst, k, n, lc);
      append_utf8(out, static_cast<char32_t>(lc));
    }
  }
  return out;
}

}  // namespace autotrain::tokenizer::unicode
