// Paths taken from the environment, expanded as Python's os.path.expanduser and expandvars do:
// huggingface_hub expands HF_HOME, HF_HUB_CACHE, HF_TOKEN_PATH (and the XDG default) that way, so
// `HF_HOME='~/hf'` names $HOME/hf there and must here too. Header-only (no library to
// link), for io and model alike.
#pragma once

#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <optional>
#include <string>
#include <string_view>

namespace autotrain::io {

// `~` and `~/rest`: `home` (the HOME variable), else the user database's home of this user;
// `~name/rest`: that user's home. Anything else, or an unknown user, is returned unchanged.
inline std::string expand_user(std::string_view path, const std::optional<std::string>& home) {
  if (path.empty() || path.front() != '~') return std::string(path);
  size_t slash = path.find('/', 1);
  if (slash == std::string_view::npos) slash = path.size();
  std::string user_home;
  if (slash == 1) {
    if (home && !home->empty()) {
      user_home = *home;
    } else if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) {
      user_home = pw->pw_dir;
    } else {
      return std::string(path);
    }
  } else {
    std::string name(path.substr(1, slash - 1));
    const passwd* pw = ::getpwnam(name.c_str());
    if (!pw || !pw->pw_dir) return std::string(path);
    user_home = pw->pw_dir;
  }
  while (user_home.size() > 1 && user_home.back() == '/') user_home.pop_back();
  if (user_home == "/") user_home.clear();  // "/" + "/rest", as Python gives "/rest"
  std::string out = user_home + std::string(path.substr(slash));
  return out.empty() ? std::string("/") : out;
}

// `$NAME` and `${NAME}` replaced by their values, as Python's os.path.expandvars does (huggingface_hub
// applies it after expanduser): NAME is letters, digits and `_`; a variable `lookup` does not
// know is left as written. `lookup(name)` gives the variable's value, or nullopt.
template <typename Lookup>
std::string expand_vars(std::string_view path, const Lookup& lookup) {
  std::string out;
  for (size_t i = 0; i < path.size();) {
    if (path[i] != '$') {
      out += path[i++];
      continue;
    }
    const bool braced = i + 1 < path.size() && path[i + 1] == '{';
    size_t start = i + (braced ? 2 : 1), end = start;
    if (braced) {
      end = path.find('}', start);
      if (end == std::string_view::npos) {  // no closing brace: nothing to expand
        out += path.substr(i);
        break;
      }
    } else {
      while (end < path.size() && (std::isalnum(static_cast<unsigned char>(path[end])) || path[end] == '_')) ++end;
    }
    const std::string name(path.substr(start, end - start));
    const size_t next = braced ? end + 1 : end;
    std::optional<std::string> value;
    if (!name.empty()) value = lookup(name);
    out += value ? *value : std::string(path.substr(i, next - i));  // a lone '$' is kept as it is
    i = next;
  }
  return out;
}

// A path from a huggingface_hub variable, expanded as huggingface_hub expands it: expanduser, then
// expandvars. `lookup(name)` gives an environment variable's value (HOME included), or nullopt.
template <typename Lookup>
std::string expand_hf_path(std::string_view path, const Lookup& lookup) {
  return expand_vars(expand_user(path, lookup(std::string("HOME"))), lookup);
}

}  // namespace autotrain::io
