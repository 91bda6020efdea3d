// libFuzzer target: the .env evaluator and the typed config on arbitrary bytes. Any input
// must end in a result or an EnvFileError/ConfigError: no crash, hang, leak or UB.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "autotrain/config/config.h"
#include "autotrain/config/envfile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  autotrain::config::Environment env = {{"HOME", "/home/fuzz"}, {"PROJECT_ID", "p"}, {"EMPTY", ""}};
  try {
    auto result = autotrain::config::parse_env_file(text, "fuzz.env", env);
    for (const auto& w : result.warnings) (void)w.format("warning");
  } catch (const autotrain::config::EnvFileError& e) {
    for (const auto& d : e.errors()) (void)d.format("error");
  }
  return 0;
}
