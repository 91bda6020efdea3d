// The part of a JSON library error that is for users.
//
// nlohmann::json's messages open with an identifier for its developers,
// "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error while parsing
// object key - invalid literal; last read: '{x'; expected string literal". Errors we show keep
// the location and the cause, and drop the identifier.
#pragma once

#include <exception>
#include <string>
#include <string_view>

namespace autotrain::io {

inline std::string json_error_text(const std::exception& e) {
  std::string_view text = e.what();
  if (text.rfind("[json.exception.", 0) == 0)
    if (const auto close = text.find("] "); close != std::string_view::npos) text.remove_prefix(close + 2);
  return std::string(text);
}

}  // namespace autotrain::io
