// Running the Python reference stack (AUTOTRAIN_PYTHON) on a script of tests/reference/ at test
// time. Reference tests need it: a missing interpreter is a failure with the reason, never a
// skip, so CI cannot pass without the oracle.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace autotrain::testing {

inline CommandResult run_reference_python(const std::string& script, const std::vector<std::string>& args) {
  auto py = env_var("AUTOTRAIN_PYTHON");
  auto src = env_var("AUTOTRAIN_SOURCE_DIR");
  if (!py || !src) {
    ADD_FAILURE() << "AUTOTRAIN_PYTHON and AUTOTRAIN_SOURCE_DIR must be set (run the tests through ctest)";
    return {};
  }
  std::vector<std::string> argv = {*py, (std::filesystem::path(*src) / "tests" / "reference" / script).string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

inline std::string bytes_of_file(const std::filesystem::path& p) { return read_file(p); }

}  // namespace autotrain::testing
