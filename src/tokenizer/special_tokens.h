// Which tokens are bos/eos/pad, from the transformers files beside the tokenizer
// (tokenizer_config.json, else special_tokens_map.json), and the content hash helper.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace autotrain::tokenizer {

struct SpecialTokenConfig {
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<std::string> pad_token;
  // tokenizer_config.json's add_bos_token / add_eos_token (SentencePiece models: what
  // add_special_tokens adds, as transformers' LlamaTokenizer does).
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
  std::string raw;  // the files' bytes, folded into the content hash
};

// Reads the config files in `folder` (missing files are fine; malformed ones are errors).
SpecialTokenConfig read_special_token_config(const std::filesystem::path& folder);

// 128-bit FNV-1a based digest as 32 hex characters (change detection, not cryptography).
std::string hex_digest(std::string_view data);

}  // namespace autotrain::tokenizer
