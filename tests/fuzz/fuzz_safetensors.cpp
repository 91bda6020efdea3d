// Fuzzes the safetensors header parser with whole file images. Besides not crashing, an accepted
// file must satisfy what the loader relies on: every tensor's bytes lie inside the buffer, the
// spans tile it exactly, and each span is dtype × shape bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "autotrain/safetensors/file.h"

using namespace autotrain::safetensors;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  Header h;
  try {
    h = SafetensorsFile::parse(file, "fuzz.safetensors");
  } catch (const SafetensorsError&) {
    return 0;
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  const uint64_t buffer = size - 8 - n;
  uint64_t pos = 0;
  for (const auto& t : h.tensors) {
    if (t.begin != pos || t.end < t.begin || t.end > buffer) std::abort();
    if (byte_size(t.dtype, t.shape, "fuzz", t.name) != t.nbytes()) std::abort();
    pos = t.end;
  }
  if (pos != buffer) std::abort();
  return 0;
}
