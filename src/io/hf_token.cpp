#include "autotrain/io/hf_token.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "autotrain/io/atomic_file.h"
#include "autotrain/io/expand_user.h"

namespace autotrain::io {

std::filesystem::path hf_token_path(const config::Environment& env) {
  auto get = [&](const char* name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
  // huggingface_hub passes each of these through os.path.expanduser, then os.path.expandvars.
  const auto home = get("HOME");
  auto expand = [&](const std::string& p) {
    return std::filesystem::path(expand_hf_path(p, [&](const std::string& n) { return get(n.c_str()); }));
  };
  if (auto path = get("HF_TOKEN_PATH")) return expand(*path);
  if (auto hf_home = get("HF_HOME")) return expand(*hf_home) / "token";
  if (auto xdg = get("XDG_CACHE_HOME")) return expand(*xdg) / "huggingface" / "token";
  std::string user_home = expand_user("~", home);
  if (user_home == "~") throw std::runtime_error("cannot place the Hugging Face token: neither HF_HOME nor HOME is set");
  return std::filesystem::path(user_home) / ".cache" / "huggingface" / "token";
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

std::string trim_token(std::string_view token) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!token.empty() && blank(token.front())) token.remove_prefix(1);
  while (!token.empty() && blank(token.back())) token.remove_suffix(1);
  return std::string(token);
}

std::optional<std::string> token_problem(std::string_view token) {
  if (token.empty()) return std::string("is empty");
  for (unsigned char c : token)
    if (c <= 0x20 || c == 0x7f) return std::string("contains whitespace or control characters");
  return std::nullopt;
}

bool plausible_token(std::string_view token) { return !token_problem(token); }

}  // namespace autotrain::io
