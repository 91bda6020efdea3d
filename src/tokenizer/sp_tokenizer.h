// SentencePiece `.model` files (Llama-2 style), through libsentencepiece.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "autotrain/tokenizer/tokenizer.h"
#include "special_tokens.h"

namespace autotrain::tokenizer {

// `model_bytes` is the serialized model read from `source` (named in errors).
std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& model_bytes, const std::string& source,
                                              const SpecialTokenConfig& specials);

}  // namespace autotrain::tokenizer
