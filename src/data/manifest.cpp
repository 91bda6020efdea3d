// Manifest comparison for the token cache (see manifest.h).
#include "manifest.h"

#include <fmt/format.h>

#include "autotrain/data/readers.h"
#include "autotrain/data/sha256.h"
#include "autotrain/io/json_error.h"

namespace autotrain::data {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

ordered_json describe_source(const fs::path& path) {
  ordered_json j;
  j["path"] = fs::absolute(path).lexically_normal().string();
  j["size"] = fs::file_size(path);
  j["sha256"] = file_sha256(path);
  return j;
}

namespace {

std::string short_value(const ordered_json& v) {
  if (v.is_null()) return "(unset)";
  if (v.is_string()) return v.get<std::string>().empty() ? "\"\"" : v.get<std::string>();
  return v.dump();
}

std::optional<std::string> sources_differ(const std::string& split, const ordered_json& was, const ordered_json& now) {
  if (!was.is_array() || !now.is_array()) return fmt::format("the {} split's files changed", split);
  if (was.size() != now.size())
    return fmt::format("the {} split now has {} files (was {})", split, now.size(), was.size());
  for (size_t i = 0; i < now.size(); ++i) {
    const auto& a = was[i];
    const auto& b = now[i];
    if (a.value("path", "") != b.value("path", ""))
      return fmt::format("the {} split's file changed: {} (was {})", split, b.value("path", ""), a.value("path", ""));
    if (a.value("size", uint64_t{0}) != b.value("size", uint64_t{0}))
      return fmt::format("source file {} changed (size {} -> {} bytes)", b.value("path", ""), a.value("size", uint64_t{0}),
                         b.value("size", uint64_t{0}));
    if (a.value("sha256", "") != b.value("sha256", ""))
      return fmt::format("source file {} changed (sha256 {} -> {})", b.value("path", ""),
                         a.value("sha256", "").substr(0, 12), b.value("sha256", "").substr(0, 12));
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> why_different(const ordered_json& recorded, const ordered_json& current) {
  if (!recorded.is_object()) return "the manifest has no inputs";
  const auto& was_settings = recorded.value("settings", ordered_json::object());
  const auto& now_settings = current.at("settings");
  for (const auto& [key, now] : now_settings.items()) {
    ordered_json was = was_settings.contains(key) ? was_settings.at(key) : ordered_json();
    if (was != now) return fmt::format("{} changed: {} -> {}", key, short_value(was), short_value(now));
  }
  for (const auto& [key, was] : was_settings.items())
    if (!now_settings.contains(key)) return fmt::format("{} changed: {} -> (unset)", key, short_value(was));
  if (recorded.value("model_dir", "") != current.value("model_dir", ""))
    return fmt::format("the model folder changed: {} -> {}", recorded.value("model_dir", ""),
                       current.value("model_dir", ""));
  if (recorded.value("tokenizer", "") != current.value("tokenizer", ""))
    return fmt::format("the tokenizer changed (content hash {} -> {})", recorded.value("tokenizer", "").substr(0, 12),
                       current.value("tokenizer", "").substr(0, 12));
  if (recorded.value("max_position_embeddings", 0) != current.value("max_position_embeddings", 0))
    return "the model's max_position_embeddings changed";
  const auto& was_sources = recorded.value("sources", ordered_json::object());
  for (const auto& [split, now] : current.at("sources").items()) {
    if (!was_sources.contains(split)) return fmt::format("the {} split is new", split);
    if (auto why = sources_differ(split, was_sources.at(split), now)) return why;
  }
  for (const auto& [split, was] : was_sources.items())
    if (!current.at("sources").contains(split)) return fmt::format("the {} split is gone", split);
  return std::nullopt;
}

std::optional<ordered_json> read_manifest(const fs::path& path, std::string* why) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    *why = "no token cache yet";
    return std::nullopt;
  }
  try {
    auto j = ordered_json::parse(read_file_bytes(path));
    if (j.value("format", 0) != kManifestFormat) {
      *why = fmt::format("the cache has format {} (this build writes {})", j.value("format", 0), kManifestFormat);
      return std::nullopt;
    }
    return j;
  } catch (const std::exception& e) {
    *why = fmt::format("{} is unreadable ({})", path.string(), io::json_error_text(e));
    return std::nullopt;
  }
}

}  // namespace autotrain::data
