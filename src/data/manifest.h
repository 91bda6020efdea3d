// The token cache's manifest.json: what the blocks were built from (source files with size and
// SHA-256, tokenizer hash, every key that changes tokenization) and what came out. Internal to
// the data module.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace autotrain::data {

inline constexpr int kManifestFormat = 1;

// {"path", "size", "sha256"} of a source file.
nlohmann::ordered_json describe_source(const std::filesystem::path& path);

// The first difference between the recorded inputs and the current ones, as a reason a user
// understands ("BLOCK_SIZE changed: 64 -> 32", "source file x.jsonl changed (sha256 ...)"), or
// nullopt when they are the same.
std::optional<std::string> why_different(const nlohmann::ordered_json& recorded, const nlohmann::ordered_json& current);

// The manifest at `path`, or nullopt when it is absent or unreadable (a reason goes to `why`).
std::optional<nlohmann::ordered_json> read_manifest(const std::filesystem::path& path, std::string* why);

}  // namespace autotrain::data
