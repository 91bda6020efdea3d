// Small helpers shared by the test suites: temporary folders, running commands, reading
// the paths CTest passes in the environment.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace autotrain::testing {

// A fresh folder under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path write(const std::string& name, const std::string& contents) const;

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs argv (no shell) with the given environment ("K=V"; empty = inherit) in `cwd`,
// feeding `stdin_text`. Captures stdout and stderr separately.
CommandResult run_command(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                          const std::filesystem::path& cwd = {}, const std::string& stdin_text = {});

// Environment variable or nullopt when unset/empty.
std::optional<std::string> env_var(const char* name);

std::string read_file(const std::filesystem::path& path);

}  // namespace autotrain::testing
