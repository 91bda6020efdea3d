// A Hugging Face `tokenizer.json`: added tokens, normalizer, pre-tokenizer, BPE model,
// post-processor and decoder, assembled by load_hf_tokenizer().
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "autotrain/tokenizer/tokenizer.h"
#include "special_tokens.h"

namespace autotrain::tokenizer {

// Parses `json_text` (the contents of `source`, named in errors). Throws TokenizerError naming
// the file and the JSON path of anything unsupported.
std::unique_ptr<Tokenizer> load_hf_tokenizer(std::string_view json_text, const std::string& source,
                                             const SpecialTokenConfig& specials);

}  // namespace autotrain::tokenizer
