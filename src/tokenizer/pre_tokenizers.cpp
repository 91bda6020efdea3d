#include "pre_tokenizers.h"

namespace autotrain::tokenizer {

namespace {

// The byte -> code point table of GPT-2's `bytes_to_unicode`: printable Latin-1 bytes keep
// their code point, the 68 others get U+0100.. in increasing byte order.
std::array<char32_t, 256> make_byte_code_points() {
  std::array<char32_t, 256> t{};
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    t[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return t;
}

const std::array<char32_t, 256>& byte_code_points() {
  static const std::array<char32_t, 256> t = make_byte_code_points();
  return t;
}

// Applies `fn(piece, out)` to every piece, collecting the results in place of the input.
template <typename Fn>
void for_each_piece(Pieces& pieces, Fn fn) {
  thread_local Pieces out_storage;
  Pieces out;
  out.swap(out_storage);
  out.clear();
  out.reserve(pieces.size() * 2);
  for (const Piece& p : pieces) fn(p, out);
  pieces.swap(out);
  out.swap(out_storage);
}

}  // namespace

const std::array<std::string, 256>& byte_level_chars() {
  static const std::array<std::string, 256> t = [] {
    std::array<std::string, 256> s;
    for (int b = 0; b < 256; ++b) unicode::append_utf8(s[b], byte_code_points()[b]);
    return s;
  }();
  return t;
}

int byte_level_byte(char32_t c) {
  static const std::array<int16_t, 0x144> inverse = [] {
    std::array<int16_t, 0x144> inv;
    inv.fill(-1);
    for (int b = 0; b < 256; ++b) inv[byte_code_points()[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  return c < inverse.size() ? inverse[c] : -1;
}

void SplitPreTokenizer::split(Pieces& pieces) const {
  for_each_piece(pieces, [this](const Piece& p, Pieces& out) {
    thread_local std::vector<Span> spans;
    regex_spans(pattern_, p.text, invert_, spans);
    split_piece(p, spans, behavior_, out);
  });
}

void PunctuationPreTokenizer::split(Pieces& pieces) const {
  for_each_piece(pieces, [this](const Piece& p, Pieces& out) {
    thread_local std::vector<Span> spans;
    char_spans(p.text, unicode::is_punctuation, spans);
    split_piece(p, spans, behavior_, out);
  });
}

void DigitsPreTokenizer::split(Pieces& pieces) const {
  for_each_piece(pieces, [this](const Piece& p, Pieces& out) {
    thread_local std::vector<Span> spans;
    char_spans(p.text, unicode::is_numeric, spans);
    split_piece(p, spans, individual_ ? SplitBehavior::Isolated : SplitBehavior::Contiguous, out);
  });
}

void ByteLevelPreTokenizer::split(Pieces& pieces) const {
  const auto& chars = byte_level_chars();
  for_each_piece(pieces, [&](const Piece& p, Pieces& out) {
    std::string prefixed;
    std::string_view text = p.text;
    if (add_prefix_space_ && (text.empty() || text[0] != ' ')) {
      prefixed = " " + p.text;
      text = prefixed;
    }
    auto emit = [&](size_t s, size_t e) {
      if (s == e) return;
      Piece piece;
      piece.at_start = p.at_start && s == 0;
      piece.text.reserve((e - s) * 2);
      for (size_t k = s; k < e; ++k) piece.text += chars[static_cast<unsigned char>(text[k])];
      out.push_back(std::move(piece));
    };
    if (use_regex_)
      gpt2_split(text, emit);
    else
      emit(0, text.size());
  });
}

void WhitespacePreTokenizer::split(Pieces& pieces) const {
  // `\w+|[^\w\s]+` with everything else removed: runs of word characters and runs of other
  // non-space characters.
  for_each_piece(pieces, [](const Piece& p, Pieces& out) {
    const char* base = p.text.data();
    const char* it = base;
    const char* end = base + p.text.size();
    int run_kind = -1;  // 0 word, 1 other, -1 none
    size_t run_start = 0;
    auto flush = [&](size_t upto) {
      if (run_kind >= 0 && upto > run_start)
        out.push_back({p.text.substr(run_start, upto - run_start), p.at_start && run_start == 0});
      run_kind = -1;
    };
    while (it < end) {
      size_t pos = static_cast<size_t>(it - base);
      char32_t c = unicode::next_code_point(it);
      int kind = unicode::is_word(c) ? 0 : unicode::is_whitespace(c) ? -1 : 1;
      if (kind != run_kind) {
        flush(pos);
        run_kind = kind;
        run_start = pos;
      }
    }
    flush(p.text.size());
  });
}

void CharSplitPreTokenizer::split(Pieces& pieces) const {
  for_each_piece(pieces, [this](const Piece& p, Pieces& out) {
    thread_local std::vector<Span> spans;
    if (delimiter_) {
      char32_t d = *delimiter_;
      char_spans(p.text, [d](char32_t c) { return c == d; }, spans);
    } else {
      char_spans(p.text, unicode::is_whitespace, spans);
    }
    split_piece(p, spans, SplitBehavior::Removed, out);
  });
}

MetaspacePreTokenizer::MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split)
    : replacement_(replacement), scheme_(scheme), split_(split) {
  unicode::append_utf8(replacement_utf8_, replacement);
}

void MetaspacePreTokenizer::split(Pieces& pieces) const {
  for_each_piece(pieces, [this](const Piece& p, Pieces& out) {
    Piece r;
    r.at_start = p.at_start;
    r.text.reserve(p.text.size() + 8);
    for (char ch : p.text) {
      if (ch == ' ')
        r.text += replacement_utf8_;
      else
        r.text += ch;
    }
    bool starts = r.text.compare(0, replacement_utf8_.size(), replacement_utf8_) == 0;
    if (!starts && (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && p.at_start)))
      r.text.insert(0, replacement_utf8_);
    if (!split_) {
      if (!r.text.empty()) out.push_back(std::move(r));
      return;
    }
    thread_local std::vector<Span> spans;
    char32_t rep = replacement_;
    char_spans(r.text, [rep](char32_t c) { return c == rep; }, spans);
    split_piece(r, spans, SplitBehavior::MergedWithNext, out);
  });
}

}  // namespace autotrain::tokenizer
