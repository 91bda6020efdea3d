// A Python oracle of tests/reference/ run once per test binary: the script writes its expected
// values into a temporary folder that the tests read. AUTOTRAIN_PYTHON (set by CTest) names the
// reference stack's interpreter.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace autotrain::testing {

class ReferenceRun {
 public:
  // Runs `tests/reference/<script> <args...> <folder>`: the folder is appended as the last argument.
  ReferenceRun(std::string script, std::vector<std::string> args);

  bool have_python() const { return python_.has_value(); }
  bool ok() const { return ok_; }
  const std::string& log() const { return log_; }
  const std::filesystem::path& dir() const { return dir_.path(); }

  // Runs the same script again with other arguments (e.g. a check of files we wrote).
  CommandResult run(const std::vector<std::string>& args) const;

 private:
  std::string script_;
  std::optional<std::string> python_;
  TempDir dir_;
  bool ok_ = false;
  std::string log_;
};

}  // namespace autotrain::testing
