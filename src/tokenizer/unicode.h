// UTF-8 and Unicode character classes as the reference libraries see them. The Hugging Face
// `tokenizers` pipeline decides splits with Rust's `char` predicates (is_whitespace, is_numeric,
// is_alphanumeric) and `unicode_categories` (punctuation); we ask ICU for the same properties,
// corrected to the Unicode versions those libraries were built with (ICU is the system's: 15.0 on
// Debian bookworm; tokenizers knows 16.0 letters and numbers, and punctuation as of 8.0).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace autotrain::tokenizer::unicode {

// Decodes the code point at `p` (valid UTF-8 assumed) and advances `p` past it.
inline char32_t next_code_point(const char*& p) {
  auto b = static_cast<unsigned char>(*p++);
  if (b < 0x80) return b;
  if (b < 0xE0) return ((b & 0x1Fu) << 6) | (static_cast<unsigned char>(*p++) & 0x3Fu);
  if (b < 0xF0) {
    char32_t c = ((b & 0x0Fu) << 12) | ((static_cast<unsigned char>(p[0]) & 0x3Fu) << 6) |
                 (static_cast<unsigned char>(p[1]) & 0x3Fu);
    p += 2;
    return c;
  }
  char32_t c = ((b & 0x07u) << 18) | ((static_cast<unsigned char>(p[0]) & 0x3Fu) << 12) |
               ((static_cast<unsigned char>(p[1]) & 0x3Fu) << 6) | (static_cast<unsigned char>(p[2]) & 0x3Fu);
  p += 3;
  return c;
}

// Length in bytes of the UTF-8 sequence that starts with `lead` (valid UTF-8 assumed).
inline int sequence_length(unsigned char lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

void append_utf8(std::string& out, char32_t c);

// True when `s` is well-formed UTF-8 (no surrogates, no overlongs, at most U+10FFFF).
bool is_valid_utf8(std::string_view s);

// `s` with every ill-formed subsequence replaced by U+FFFD, one per maximal subpart (the
// Unicode-recommended practice that Python's and Rust's lossy decoders both follow).
std::string to_valid_utf8(std::string_view s);
// `s` itself when it is valid UTF-8, else its repaired copy kept in `storage`. Encoders take
// text as Python's str would hold it (invalid bytes already replaced by U+FFFD).
inline std::string_view valid_utf8_view(std::string_view s, std::string& storage) {
  if (is_valid_utf8(s)) return s;
  storage = to_valid_utf8(s);
  return storage;
}

// Rust `char::is_whitespace`: the White_Space property.
bool is_whitespace(char32_t c);
// General category L* (Unicode 16.0).
bool is_letter(char32_t c);
// Rust `char::is_numeric`: general category Nd, Nl or No (Unicode 16.0).
bool is_numeric(char32_t c);
// Rust `char::is_alphanumeric`: Alphabetic property or numeric.
bool is_alphanumeric(char32_t c);
// `tokenizers`' punctuation test: ASCII punctuation or general category P* as the
// `unicode_categories` crate has it (Unicode 8.0: nothing assigned later, and the two characters
// that were punctuation then, U+166D and U+111C9, still count).
bool is_punctuation(char32_t c);
// Unicode `\w` as Oniguruma defines it for the Whitespace pre-tokenizer: letters, marks,
// decimal digits, connector punctuation.
bool is_word(char32_t c);
// Letters (L*) and decimal digits (Nd) that Unicode assigned after 14.0 (newer than the
// system's ICU and PCRE2 tables), as the items of a PCRE2 character class ("\\x{1C89}-\\x{1C8A}...").
std::string newer_letters_class_items();
std::string newer_digits_class_items();

// Unicode normalization forms (through ICU). Input must be valid UTF-8.
std::string nfc(std::string_view s);
std::string nfd(std::string_view s);
std::string nfkc(std::string_view s);
std::string nfkd(std::string_view s);
// Rust `char::to_lowercase` applied to every character (full mappings, no context).
std::string lowercase(std::string_view s);

}  // namespace autotrain::tokenizer::unicode
