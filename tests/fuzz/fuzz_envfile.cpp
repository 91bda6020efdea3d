// libFuzzer target: the .env evaluator and the typed config on arbitrary bytes. Any input
// must end in a result or an EnvFileError/ConfigError: no crash, hang, leak or UB.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

#include <unistd.h>

#include <nlohmann/json.hpp>

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
    return 0;
  }
  // A file the evaluator accepts goes on to the typed config (values, aliases, the rules between
  // keys), as `autotrain config -c FILE` would take it.
  static const std::string path = "/tmp/autotrain-fuzz-envfile-" + std::to_string(::getpid()) + ".env";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  try {
    auto cfg = autotrain::config::Config::resolve({path, env, {"SEED=1"}});
    (void)cfg.to_json().dump();
  } catch (const autotrain::config::ConfigError& e) {
    (void)std::string(e.what());
  }
  return 0;
}
