#include "zstd_stream.h"

#include <algorithm>
#include <memory>
#include <new>

#include <zstd.h>

namespace autotrain::data {

ZstdResult zstd_decompress(std::string_view in, uint64_t limit, std::string& out, std::string* error) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!ctx) throw std::bad_alloc();
  char chunk[1 << 16];
  ZSTD_inBuffer src{in.data(), in.size(), 0};
  size_t rc = 1;  // 0 once a frame is complete
  while (src.pos < src.size || rc != 0) {
    ZSTD_outBuffer o{chunk, sizeof chunk, 0};
    const size_t before = src.pos;
    rc = ZSTD_decompressStream(ctx.get(), &o, &src);
    if (ZSTD_isError(rc)) {
      if (error) *error = ZSTD_getErrorName(rc);
      return ZstdResult::kDamaged;
    }
    if (o.pos > limit - std::min<uint64_t>(limit, out.size())) return ZstdResult::kPastLimit;
    out.append(chunk, o.pos);
    if (rc != 0 && src.pos == src.size && src.pos == before && o.pos == 0) break;  // the input ends inside a frame
  }
  return rc == 0 ? ZstdResult::kDone : ZstdResult::kCutShort;
}

}  // namespace autotrain::data
