// Parsing the text of JSON files that users and other tools give us.
//
// nlohmann::json reads a NUL byte as the end of its input (a C-string habit), so a file damaged
// after a NUL would load whatever came before it without a word, where Python's json (and so
// transformers, peft, tokenizers) stops with an error. JSON text cannot hold a NUL (inside a
// string it is written \u0000), so one is refused where it is, as a parse error that the callers'
// existing `catch (json::exception&)` reports like any other.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

namespace autotrain::io {

struct TextPosition {
  size_t line = 1;    // from 1
  size_t column = 1;  // from 1, in bytes
};

// Where byte `offset` of `text` is, for messages.
inline TextPosition position_of(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  TextPosition p;
  p.line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
  const size_t line_start = offset == 0 ? std::string_view::npos : text.rfind('\n', offset - 1);
  p.column = line_start == std::string_view::npos ? offset + 1 : offset - line_start;
  return p;
}

template <class Json = nlohmann::json>
Json parse_json_text(std::string_view text, typename Json::parser_callback_t callback = nullptr) {
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    const TextPosition at = position_of(text, nul);
    nlohmann::detail::position_t pos;
    pos.chars_read_total = nul + 1;
    pos.lines_read = at.line - 1;
    pos.chars_read_current_line = at.column;
    throw Json::parse_error::create(101, pos,
                                    "a NUL byte, which JSON text cannot hold (it is written \\u0000 inside a "
                                    "string); is this a binary or damaged file?",
                                    nullptr);
  }
  return Json::parse(text.begin(), text.end(), callback);
}

}  // namespace autotrain::io
