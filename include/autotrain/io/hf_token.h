// The Hugging Face token on disk, where huggingface_hub reads it: $HF_TOKEN_PATH, else
// $HF_HOME/token (default ~/.cache/huggingface/token), mode 0600. The token itself is never
// printed or logged; mask_token gives the only form that may appear in output.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "autotrain/config/envfile.h"

namespace autotrain::io {

// $HF_TOKEN_PATH, or $HF_HOME/token, or $XDG_CACHE_HOME/huggingface/token, or
// ~/.cache/huggingface/token; a leading `~` in any of them is expanded as huggingface_hub does.
std::filesystem::path hf_token_path(const config::Environment& env);

// Writes the token (atomically, mode 0600; the folder is created 0700 if missing).
void store_hf_token(const std::filesystem::path& path, std::string_view token);

// "hf_…abcd": the prefix and the last four characters (all masked if the token is short).
std::string mask_token(std::string_view token);

// The token as typed or pasted, without leading and trailing blanks (spaces, tabs, CR, LF).
std::string trim_token(std::string_view token);

// Why `token` (already trimmed) cannot be a token: "is empty", or "contains whitespace or
// control characters"; nullopt when it is plausible.
std::optional<std::string> token_problem(std::string_view token);

// Checks the shape of a token: non-empty, no whitespace or control characters.
bool plausible_token(std::string_view token);

}  // namespace autotrain::io
