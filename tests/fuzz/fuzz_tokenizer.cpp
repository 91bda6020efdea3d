// libFuzzer target: tokenizer.json loading and encoding/decoding on arbitrary bytes.
// The first byte picks the mode:
//   even: the rest is a tokenizer.json; if it loads, a few texts are encoded and decoded;
//   odd:  the rest is text, encoded and decoded by fixed tokenizers covering every component,
//         and also read as ids to decode.
// Any input must end in a result or a TokenizerError: no crash, hang, leak or UB; and cached,
// uncached and batch encodings must agree.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "autotrain/tokenizer/tokenizer.h"
#include "hf_tokenizer.h"
#include "pre_tokenizers.h"

namespace {

using autotrain::tokenizer::TokenId;
using autotrain::tokenizer::Tokenizer;
using autotrain::tokenizer::TokenizerError;

// Encodes and decodes `text`; a second encode (served by the word cache) and a batch encode
// on worker threads must give the same ids as the first.
void exercise(const Tokenizer& tok, std::string_view text) {
  for (bool special : {false, true}) {
    std::vector<TokenId> ids = tok.encode(text, special);
    if (tok.encode(text, special) != ids) __builtin_trap();
    (void)tok.decode(ids, false);
    (void)tok.decode(ids, true);
  }
  std::vector<std::string> texts(3, std::string(text));
  for (const auto& ids : tok.encode_batch(texts, true, 2))
    if (ids != tok.encode(text, true)) __builtin_trap();
}

// JSON string literal of `s` (valid UTF-8 assumed).
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// A byte-level vocabulary (all 256 byte characters, a few merges) under `pipeline` JSON members.
std::string byte_level_json(const std::string& pipeline, bool byte_fallback) {
  const auto& chars = autotrain::tokenizer::byte_level_chars();
  std::string vocab = "{";
  int id = 0;
  for (int b = 0; b < 256; ++b) vocab += (b ? "," : "") + quoted(chars[b]) + ":" + std::to_string(id++);
  for (const char* t : {"Ġt", "he", "Ġthe", "in", "Ġa", "▁", "▁t", "<unk>", "<s>", "</s>"})
    vocab += "," + quoted(t) + ":" + std::to_string(id++);
  if (byte_fallback)
    for (int b = 0; b < 256; ++b) {
      char name[8];
      snprintf(name, sizeof name, "<0x%02X>", b);
      vocab += "," + quoted(name) + ":" + std::to_string(id++);
    }
  vocab += "}";
  return R"({"version":"1.0","added_tokens":[
      {"id":264,"content":"<s>","special":true,"lstrip":false,"rstrip":false,"single_word":false,"normalized":false},
      {"id":265,"content":"</s>","special":true,"lstrip":true,"rstrip":true,"single_word":false,"normalized":false},
      {"id":)" + std::to_string(id) + R"(,"content":"word","special":false,"lstrip":false,"rstrip":false,"single_word":true,"normalized":true}],)" +
         pipeline + R"(,"model":{"type":"BPE","dropout":null,"unk_token":"<unk>","fuse_unk":true,"byte_fallback":)" +
         (byte_fallback ? "true" : "false") + R"(,"vocab":)" + vocab + R"(,"merges":["Ġ t","h e","Ġt he","i n","Ġ a","▁ t"]}})";
}

const std::vector<std::unique_ptr<Tokenizer>>& fixed_tokenizers() {
  static const auto* all = [] {
    auto* v = new std::vector<std::unique_ptr<Tokenizer>>;
    autotrain::tokenizer::SpecialTokenConfig none;
    const std::string falcon = R"("normalizer":null,"pre_tokenizer":{"type":"Sequence","pretokenizers":[
        {"type":"Punctuation","behavior":"Contiguous"},
        {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
        {"type":"Digits","individual_digits":false},
        {"type":"Split","pattern":{"Regex":"[0-9][0-9][0-9]"},"behavior":"Isolated","invert":false}]},
        "post_processor":{"type":"ByteLevel"},"decoder":{"type":"ByteLevel"})";
    const std::string llama = R"("normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},
        {"type":"Replace","pattern":{"String":" "},"content":"▁"}]},"pre_tokenizer":null,
        "post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},
          {"Sequence":{"id":"A","type_id":0}}],"pair":[],"special_tokens":{"<s>":{"id":"<s>","ids":[264],"tokens":["<s>"]}}},
        "decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},
          {"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":1}]})";
    const std::string sink = R"J("normalizer":{"type":"Sequence","normalizers":[{"type":"NFKC"},{"type":"Lowercase"},
          {"type":"Strip","strip_left":true,"strip_right":true},{"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "},
          {"type":"NFD"}]},
        "pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Whitespace"},{"type":"Metaspace","replacement":"▁",
          "prepend_scheme":"first","split":true},{"type":"Split","pattern":{"Regex":"(?i:'s|[aeiou])"},
          "behavior":"MergedWithNext","invert":true},{"type":"Split","pattern":{"String":"th"},"behavior":"MergedWithPrevious",
          "invert":false},{"type":"Digits","individual_digits":true},{"type":"WhitespaceSplit"},
          {"type":"CharDelimiterSplit","delimiter":"x"},{"type":"ByteLevel","add_prefix_space":true,"use_regex":false}]},
        "post_processor":{"type":"Sequence","processors":[{"type":"ByteLevel"},{"type":"RobertaProcessing",
          "sep":["</s>",265],"cls":["<s>",264]}]},
        "decoder":{"type":"Sequence","decoders":[{"type":"Metaspace","replacement":"▁","prepend_scheme":"always"},
          {"type":"ByteLevel"},{"type":"Strip","content":"a","start":2,"stop":3}]})J";
    v->push_back(autotrain::tokenizer::load_hf_tokenizer(byte_level_json(falcon, false), "falcon-like", none));
    v->push_back(autotrain::tokenizer::load_hf_tokenizer(byte_level_json(llama, true), "llama-like", none));
    v->push_back(autotrain::tokenizer::load_hf_tokenizer(byte_level_json(sink, false), "kitchen-sink", none));
    return v;
  }();
  return *all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    try {
      auto tok = autotrain::tokenizer::load_hf_tokenizer(rest, "fuzz.json", {});
      for (std::string_view t : {"", " ", "Hello, world! 1234", "\xff\xfe bad", "<s> word </s>", "x\n\n\t y"}) {
        try {
          exercise(*tok, t);
        } catch (const TokenizerError&) {
        }
      }
    } catch (const TokenizerError&) {
    }
    return 0;
  }
  for (const auto& tok : fixed_tokenizers()) {
    exercise(*tok, rest);
    // The same bytes as ids: out-of-range ids must be a TokenizerError.
    std::vector<TokenId> ids;
    for (size_t i = 0; i + 1 < rest.size(); i += 2)
      ids.push_back(static_cast<TokenId>((static_cast<uint8_t>(rest[i]) << 8 | static_cast<uint8_t>(rest[i + 1])) % 600));
    try {
      (void)tok->decode(ids, rest.size() % 3 == 0);
    } catch (const TokenizerError&) {
    }
  }
  return 0;
}
