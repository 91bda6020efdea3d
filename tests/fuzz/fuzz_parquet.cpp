// Fuzzes the Parquet reader with whole file images: an error (DataError) or a result, never a
// crash, a hang or an allocation the file's size does not justify. A result has one value per row.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "autotrain/data/parquet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view file(reinterpret_cast<const char*>(data), size);
  for (const char* column : {"text", "id"}) {
    try {
      // 256 MiB for the texts: a crafted file must be refused, not fill the fuzzer's memory.
      const auto t = autotrain::data::read_parquet_text(file, column, "fuzz.parquet", uint64_t{1} << 28);
      if (!t.found && !t.values.empty()) std::abort();
    } catch (const autotrain::data::DataError&) {
    }
  }
  return 0;
}
