#include "decoders.h"

#include "normalizers.h"
#include "unicode.h"

namespace autotrain::tokenizer {

void ByteLevelDecoder::decode_chain(std::vector<std::string>& tokens) const {
  std::string bytes;
  for (const std::string& t : tokens) {
    size_t mark = bytes.size();
    const char* p = t.data();
    const char* end = p + t.size();
    bool mapped = true;
    while (p < end) {
      int b = byte_level_byte(unicode::next_code_point(p));
      if (b < 0) {
        mapped = false;
        break;
      }
      bytes.push_back(static_cast<char>(b));
    }
    if (!mapped) {
      bytes.resize(mark);
      bytes += t;
    }
  }
  tokens.assign(1, unicode::to_valid_utf8(bytes));
}

void MetaspaceDecoder::decode_chain(std::vector<std::string>& tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string out;
    const char* p = tokens[i].data();
    const char* end = p + tokens[i].size();
    while (p < end) {
      const char* start = p;
      char32_t c = unicode::next_code_point(p);
      if (c == replacement_) {
        if (i == 0 && scheme_ != PrependScheme::Never) continue;
        out.push_back(' ');
      } else {
        out.append(start, p);
      }
    }
    tokens[i] = std::move(out);
  }
}

namespace {

// "<0xAB>" -> 0xAB, else -1.
int parse_byte_token(const std::string& t) {
  if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

void ByteFallbackDecoder::decode_chain(std::vector<std::string>& tokens) const {
  std::vector<std::string> out;
  std::string pending;
  auto flush = [&] {
    if (pending.empty()) return;
    if (unicode::is_valid_utf8(pending)) {
      out.push_back(pending);
    } else {
      std::string repl;
      for (size_t k = 0; k < pending.size(); ++k) repl += "\xEF\xBF\xBD";
      out.push_back(repl);
    }
    pending.clear();
  };
  for (std::string& t : tokens) {
    int b = parse_byte_token(t);
    if (b >= 0) {
      pending.push_back(static_cast<char>(b));
    } else {
      flush();
      out.push_back(std::move(t));
    }
  }
  flush();
  tokens = std::move(out);
}

void FuseDecoder::decode_chain(std::vector<std::string>& tokens) const {
  std::string all;
  for (const auto& t : tokens) all += t;
  tokens.assign(1, std::move(all));
}

void StripDecoder::decode_chain(std::vector<std::string>& tokens) const {
  std::string content;
  unicode::append_utf8(content, content_);
  for (std::string& t : tokens) {
    size_t begin = 0, end = t.size();
    for (size_t k = 0; k < start_ && t.compare(begin, content.size(), content) == 0 && begin < end; ++k)
      begin += content.size();
    for (size_t k = 0; k < stop_ && end >= begin + content.size() &&
                       t.compare(end - content.size(), content.size(), content) == 0;
         ++k)
      end -= content.size();
    t = t.substr(begin, end - begin);
  }
}

void ReplaceDecoder::decode_chain(std::vector<std::string>& tokens) const {
  for (std::string& t : tokens) t = replace_all(pattern_, t, content_);
}

void BpeSuffixDecoder::decode_chain(std::vector<std::string>& tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string& t = tokens[i];
    std::string out;
    size_t pos = 0;
    for (size_t f; !suffix_.empty() && (f = t.find(suffix_, pos)) != std::string::npos; pos = f + suffix_.size())
      out += t.substr(pos, f - pos) + (i + 1 == tokens.size() ? "" : " ");
    out += t.substr(pos);
    t = std::move(out);
  }
}

}  // namespace autotrain::tokenizer
