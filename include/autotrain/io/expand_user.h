// A leading `~` in a path taken from the environment, expanded as Python's os.path.expanduser
// does: huggingface_hub expands HF_HOME, HF_HUB_CACHE, HF_TOKEN_PATH (and the XDG default) that
// way, so `HF_HOME='~/hf'` names $HOME/hf there and must here too. Header-only (no library to
// link), for io and model alike.
#pragma once

#include <pwd.h>
#include <unistd.h>

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

}  // namespace autotrain::io
