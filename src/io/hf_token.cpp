#include "autotrain/io/hf_token.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "autotrain/io/atomic_file.h"

namespace autotrain::io {

std::filesystem::path hf_token_path(const config::Environment& env) {
  auto get = [&](const char* name) -> std::string {
    auto it = env.find(name);
    return it == env.end() ? std::string() : it->second;
  };
  if (auto hf_home = get("HF_HOME"); !hf_home.empty()) return std::filesystem::path(hf_home) / "token";
  if (auto xdg = get("XDG_CACHE_HOME"); !xdg.empty()) return std::filesystem::path(xdg) / "huggingface" / "token";
  auto home = get("HOME");
  if (home.empty()) throw std::runtime_error("cannot place the Hugging Face token: neither HF_HOME nor HOME is set");
  return std::filesystem::path(home) / ".cache" / "huggingface" / "token";
}

void store_hf_token(const std::filesystem::path& path, std::string_view token) {
  std::filesystem::path dir = path.parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
    ::chmod(dir.c_str(), 0700);
  }
  write_file_atomic(path, token, 0600);
}

std::string mask_token(std::string_view token) {
  if (token.size() < 12) return "***";
  std::string_view prefix = token.substr(0, 3) == "hf_" ? "hf_" : "";
  return fmt::format("{}…{}", prefix, token.substr(token.size() - 4));
}

bool plausible_token(std::string_view token) {
  if (token.empty()) return false;
  for (unsigned char c : token)
    if (c <= 0x20 || c == 0x7f) return false;
  return true;
}

}  // namespace autotrain::io
