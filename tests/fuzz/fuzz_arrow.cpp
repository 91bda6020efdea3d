// Fuzzes the Arrow IPC reader with whole file images: an error (DataError) or a result, never a
// crash, a hang or an allocation the budget does not allow.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "autotrain/data/arrow_ipc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view file(reinterpret_cast<const char*>(data), size);
  try {
    const auto t = autotrain::data::read_arrow_text(file, "text", "fuzz.arrow", uint64_t{1} << 28);
    if (!t.found && !t.values.empty()) std::abort();
  } catch (const autotrain::data::DataError&) {
  }
  return 0;
}
