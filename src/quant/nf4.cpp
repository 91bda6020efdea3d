// NF4 quantization: the CPU reference, the nested (double) quantization of the statistics, and
// the dispatch to the CUDA kernels (in the CUDA backend plugin). See
// include/autotrain/quant/nf4.h for the exact semantics.
#include "autotrain/quant/nf4.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <fmt/format.h>

#include "autotrain/device/cuda_backend.h"
#include "nf4_levels.h"

namespace autotrain::quant {

namespace {

// bitsandbytes scales by 1 / absmax.clamp(min=1e-38): an all-zero block scales to 0 (code 7)
// instead of dividing by zero. 1e-38 is a float32 denormal; the clamp converts it to float first.
const float kAbsmaxFloor = static_cast<float>(1e-38);

inline uint8_t nf4_code(float s, const std::array<float, 15>& t) {
  // torch.bucketize(right=False): the number of thresholds strictly below s, so an exact tie
  // takes the lower code (as the CUDA kernel's strict '>').
  uint8_t c = 0;
  for (int k = 0; k < 15; ++k) c += static_cast<uint8_t>(t[k] < s);
  return c;
}

inline float clamp_unit(float v) { return v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v); }

// codes[i] = nf4_code(s[i]) for i < len. SSE2 (every x86-64 CPU) counts the thresholds below 16
// values with 15 packed compares instead of 240 scalar ones; the same strict '<', so the same
// codes, NaN included (no threshold is below it: code 0).
void nf4_codes(const float* s, int64_t len, const std::array<float, 15>& t, uint8_t* codes) {
  int64_t i = 0;
#if defined(__SSE2__)
  __m128 th[15];
  for (int k = 0; k < 15; ++k) th[k] = _mm_set1_ps(t[k]);
  for (; i + 16 <= len; i += 16) {
    __m128i c[4];
    for (int q = 0; q < 4; ++q) {
      const __m128 v = _mm_loadu_ps(s + i + 4 * q);
      __m128i count = _mm_setzero_si128();
      for (int k = 0; k < 15; ++k) count = _mm_sub_epi32(count, _mm_castps_si128(_mm_cmplt_ps(th[k], v)));
      c[q] = count;
    }
    const __m128i words = _mm_packs_epi32(c[0], c[1]), words2 = _mm_packs_epi32(c[2], c[3]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm_packus_epi16(words, words2));
  }
#endif
  for (; i < len; ++i) codes[i] = nf4_code(s[i], t);
}

template <typename T>
void quantize_cpu(const T* x, int64_t n, int64_t blocksize, uint8_t* packed, float* absmax) {
  const auto& t = nf4_thresholds();
  const int64_t nblocks = (n + blocksize - 1) / blocksize;
  const int64_t full_blocks = n / blocksize;
  // Every block starts on an even element for even block sizes, so blocks own whole bytes.
  at::parallel_for(0, nblocks, std::max<int64_t>(1, 16384 / blocksize), [&](int64_t b0, int64_t b1) {
    std::vector<float> scaled(static_cast<size_t>(blocksize) + 1);
    std::vector<uint8_t> codes(static_cast<size_t>(blocksize) + 1);
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t start = b * blocksize;
      const int64_t len = std::min(blocksize, n - start);
      float amax = 0.0f;
      for (int64_t i = 0; i < len; ++i) amax = std::max(amax, std::fabs(static_cast<float>(x[start + i])));
      if (b < full_blocks) {
        absmax[b] = amax;
        const float inv = 1.0f / std::max(amax, kAbsmaxFloor);
        for (int64_t i = 0; i < len; ++i) scaled[i] = clamp_unit(static_cast<float>(x[start + i]) * inv);
      } else {
        // The partial last block: bitsandbytes divides instead, and stores the floored absmax.
        const float am = std::max(amax, kAbsmaxFloor);
        absmax[b] = am;
        for (int64_t i = 0; i < len; ++i) scaled[i] = clamp_unit(static_cast<float>(x[start + i]) / am);
      }
      scaled[len] = 0.0f;  // an odd tail's low nibble: the code of 0.0
      nf4_codes(scaled.data(), len + 1, t, codes.data());
      for (int64_t i = 0; i < len; i += 2) packed[(start + i) / 2] = static_cast<uint8_t>(codes[i] << 4 | codes[i + 1]);
    }
  });
}

#if defined(__x86_64__)
// 16-bit outputs (fp16, bf16) of 16 packed bytes at a time: the block's 16 possible outputs are
// split into a table of low bytes and one of high bytes, and PSHUFB looks up 16 nibbles per
// instruction. Same table as the scalar loop, so the same bits. Returns the bytes consumed.
__attribute__((target("ssse3"))) int64_t expand_16bit_ssse3(const uint8_t* bytes, int64_t nbytes,
                                                             const uint16_t* lut, uint16_t* out) {
  alignas(16) uint8_t lo_bytes[16], hi_bytes[16];
  for (int k = 0; k < 16; ++k) {
    lo_bytes[k] = static_cast<uint8_t>(lut[k] & 0xFF);
    hi_bytes[k] = static_cast<uint8_t>(lut[k] >> 8);
  }
  const __m128i table_lo = _mm_load_si128(reinterpret_cast<const __m128i*>(lo_bytes));
  const __m128i table_hi = _mm_load_si128(reinterpret_cast<const __m128i*>(hi_bytes));
  const __m128i low_nibble = _mm_set1_epi8(0x0F);
  int64_t j = 0;
  for (; j + 16 <= nbytes; j += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + j));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), low_nibble);  // element 2j
    const __m128i lo = _mm_and_si128(v, low_nibble);                     // element 2j + 1
    const __m128i codes[2] = {_mm_unpacklo_epi8(hi, lo), _mm_unpackhi_epi8(hi, lo)};
    for (int h = 0; h < 2; ++h) {
      const __m128i out_lo = _mm_shuffle_epi8(table_lo, codes[h]);
      const __m128i out_hi = _mm_shuffle_epi8(table_hi, codes[h]);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * j + 16 * h), _mm_unpacklo_epi8(out_lo, out_hi));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * j + 16 * h + 8), _mm_unpackhi_epi8(out_lo, out_hi));
    }
  }
  return j;
}

bool have_ssse3() {
  static const bool yes = __builtin_cpu_supports("ssse3");
  return yes;
}
#endif

template <typename T>
void dequantize_cpu(const uint8_t* packed, const float* absmax, T* out, int64_t n, int64_t blocksize) {
  // Per block, the 16 possible outputs T(level * absmax) are computed once (the same single
  // float product and rounding as per element), then every byte is two table lookups.
  const auto& levels = nf4_levels();
  const int64_t nblocks = (n + blocksize - 1) / blocksize;
  at::parallel_for(0, nblocks, std::max<int64_t>(1, 32768 / blocksize), [&](int64_t b0, int64_t b1) {
    T lut[16];
    for (int64_t b = b0; b < b1; ++b) {
      const float scale = absmax[b];
      for (int k = 0; k < 16; ++k) lut[k] = static_cast<T>(levels[k] * scale);
      const int64_t start = b * blocksize;
      const int64_t end = std::min(n, start + blocksize);
      // Even block sizes keep every block on whole bytes.
      int64_t i = start;
#if defined(__x86_64__)
      if constexpr (sizeof(T) == 2) {
        if (have_ssse3()) {
          uint16_t lut16[16];
          std::memcpy(lut16, lut, sizeof lut16);
          i += 2 * expand_16bit_ssse3(packed + (start >> 1), (end - start) / 2, lut16,
                                      reinterpret_cast<uint16_t*>(out + start));
        }
      }
#endif
      for (; i + 1 < end; i += 2) {
        const uint8_t byte = packed[i >> 1];
        out[i] = lut[byte >> 4];
        out[i + 1] = lut[byte & 0x0F];
      }
      if (i < end) out[i] = lut[packed[i >> 1] >> 4];
    }
  });
}

// 8-bit blockwise quantization of the nested statistics, as bitsandbytes 0.50.2 does it on the CPU.
//
// quantize_4bit(compress_statistics=True) hands absmax - mean to quantize_blockwise(blocksize=256),
// which on the CPU runs the native kernel (cquantize_blockwise_cpu_fp32 in libbitsandbytes_cpu;
// the torch fallback only runs when that library fails to load). That kernel does not search the
// code map per value (older releases used an approximate binary search, BinSearch/Direct2; 0.50.2
// no longer does): it snaps the scaled value to one of 65536 evenly spaced points on [-1, 1] and
// takes the code nearest to that grid point from a precomputed table. So the result is the
// nearest code of the grid point, not of the value: a value within about 1/65535 of a midpoint
// between two codes can land on either side of it, and the map's codes near zero that lie closer
// together than the grid step are never produced. Per block of 256 (the last one may be shorter,
// and is treated the same way):
//   absmax  = max |x| (NaNs ignored), stored as is (no floor, unlike the 4-bit torch path);
//   absmax == 0: every code is 0 (the map's most negative entry, not the code of 0.0);
//   s       = clamp(x * (1 / absmax), -1, 1)            (a reciprocal multiply in every block)
//   k       = trunc((s + 1) * 0.5 * 65535 + 0.5)         the grid index; bnb's build fuses the
//             last multiply-add (one rounding), reproduced exactly below; a NaN s gives k = 0
//   g       = (2 * k) / 65535 - 1                        the grid point, float32, in that order
//   code    = #{ i : (map[i] + map[i + 1]) * 0.5 < g }   table entry: nearest code, ties down
// Checked against the shipped library on adversarial inputs (values on the grid's half-steps and
// on the code midpoints) as well as the reference cases in tests/reference/quant/nf4_cases.py.
//
// bitsandbytes' CUDA kernel (kQuantizeBlockwise, dQuantize) instead binary-searches the map and
// compares against the midpoints of the two neighbours, close to the exact nearest code, and
// computes the mean on the GPU. We quantize the statistics on the host for every device instead,
// with the CPU semantics above, so a tensor gives the same bits whichever device quantized it
// (tests/unit/quant/nf4_gpu_test.cpp relies on that); next to bitsandbytes' own CUDA output the
// nested codes may then differ by one step on some blocks.
class NestedCodeLookup {
 public:
  explicit NestedCodeLookup(const float* code_map) {
    for (int k = 0; k < 255; ++k) mid_[k] = (code_map[k] + code_map[k + 1]) * 0.5f;
  }

  // The grid index of a scaled value s in [-1, 1] (or NaN).
  static int grid_index(float s) {
    if (std::isnan(s)) return 0;  // bnb's float-to-int conversion of NaN, truncated to 16 bits
    const float t = (s + 1.0f) * 0.5f;
    // t * 65535 + 0.5 rounded once, as the fused multiply-add does: t is a float in [0, 1] with
    // no bits below 2^-25 (s + 1 has none below 2^-24), so the product and the sum are exact in
    // double and the conversion to float is the only rounding.
    const float u = static_cast<float>(static_cast<double>(t) * 65535.0 + 0.5);
    return static_cast<int>(u);  // u in [0.5, 65535.5]: truncation toward zero
  }

  static float grid_point(int k) { return static_cast<float>(2 * k) / 65535.0f - 1.0f; }

  uint8_t code(float s) const {
    const float g = grid_point(grid_index(s));
    return static_cast<uint8_t>(std::lower_bound(mid_.begin(), mid_.end(), g) - mid_.begin());
  }

 private:
  std::array<float, 255> mid_{};
};

void quantize_blockwise_8bit(const float* x, int64_t n, const float* code_map, uint8_t* codes, float* absmax) {
  const NestedCodeLookup lookup(code_map);
  const int64_t bs = kNestedBlocksize;
  const int64_t nblocks = (n + bs - 1) / bs;
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t start = b * bs;
    const int64_t len = std::min(bs, n - start);
    float amax = 0.0f;
    for (int64_t i = 0; i < len; ++i) {
      const float a = std::fabs(x[start + i]);
      if (amax < a) amax = a;  // a NaN never compares greater: ignored
    }
    absmax[b] = amax;
    if (amax == 0.0f) {
      std::fill(codes + start, codes + start + len, uint8_t{0});
      continue;
    }
    const float inv = 1.0f / amax;
    for (int64_t i = 0; i < len; ++i) codes[start + i] = lookup.code(clamp_unit(x[start + i] * inv));
  }
}

void check_dtype(at::ScalarType t, const char* what) {
  if (t != at::kFloat && t != at::kHalf && t != at::kBFloat16)
    throw std::invalid_argument(fmt::format("NF4 {}: dtype {} is not supported (float32, float16 or bfloat16)", what,
                                            c10::toString(t)));
}

int element_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return static_cast<int>(device::ElementType::F32);
    case at::kHalf: return static_cast<int>(device::ElementType::F16);
    default: return static_cast<int>(device::ElementType::BF16);
  }
}

// CUDA tensors exist only once the backend is loaded (it is what registers LibTorch's CUDA
// kernels), so this fails only if LibTorch's CUDA libraries were loaded some other way.
const device::CudaBackendApi& cuda_backend(const char* what) {
  const device::CudaBackendApi* api = device::cuda_backend();
  if (!api)
    throw std::runtime_error(fmt::format("{}: the tensor is on a GPU but the CUDA backend is {}", what,
                                         device::cuda_backend_status()));
  return *api;
}

void check_launch(const device::CudaBackendApi& api, int err, const char* what) {
  if (err != 0) throw std::runtime_error(fmt::format("CUDA {} failed: {}", what, api.error_string(err)));
}

}  // namespace

const std::array<float, 16>& nf4_levels() {
  static const std::array<float, 16> levels = {AUTOTRAIN_NF4_LEVELS};
  return levels;
}

const std::array<float, 15>& nf4_thresholds() {
  static const std::array<float, 15> t = [] {
    std::array<float, 15> m{};
    const auto& l = nf4_levels();
    for (int k = 0; k < 15; ++k) m[k] = (l[k] + l[k + 1]) / 2.0f;
    return m;
  }();
  return t;
}

at::Tensor signed_dynamic_map() {
  // create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for i in 0..6 the means
  // of linspace(0.1, 1, 2^i + 1), scaled by ±10^(i-6); then 0 and 1; sorted. Built with the same
  // LibTorch ops because linspace's last bits depend on the build.
  std::vector<at::Tensor> parts;
  for (int i = 0; i < 7; ++i) {
    at::Tensor b = at::linspace(0.1, 1.0, (1 << i) + 1, at::TensorOptions().dtype(at::kFloat));
    at::Tensor means = (b.slice(0, 0, -1) + b.slice(0, 1)) / 2.0;
    double scale = std::pow(10.0, -6 + i);
    parts.push_back(means * scale);
    parts.push_back(means * -scale);
  }
  parts.push_back(at::zeros({1}, at::kFloat));
  parts.push_back(at::ones({1}, at::kFloat));
  return std::get<0>(at::sort(at::cat(parts)));
}

int64_t Nf4Tensor::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

int64_t Nf4Tensor::packed_bytes() const { return packed.numel(); }

int64_t Nf4Tensor::statistics_bytes() const {
  if (nested) return nested->codes.numel() + nested->absmax.numel() * 4 + nested->code_map.numel() * 4 + 4;
  return absmax.numel() * 4;
}

Nf4Tensor quantize_nf4(const at::Tensor& input, int64_t blocksize, bool double_quant) {
  check_dtype(input.scalar_type(), "quantize");
  if (blocksize < 2 || blocksize % 2 != 0 || blocksize > 4096)
    throw std::invalid_argument(fmt::format("NF4 quantize: blocksize {} is not supported (an even number up to 4096; "
                                            "bitsandbytes uses 64, 128 or 256)", blocksize));
  at::Tensor x = input.contiguous();
  const int64_t n = x.numel();
  Nf4Tensor q;
  q.blocksize = blocksize;
  q.shape = x.sizes().vec();
  q.dtype = x.scalar_type();
  auto u8 = x.options().dtype(at::kByte);
  q.packed = at::empty({(n + 1) / 2, 1}, u8);
  q.absmax = at::empty({(n + blocksize - 1) / blocksize}, x.options().dtype(at::kFloat));
  if (n > 0) {
    if (x.is_cuda()) {
      const auto& api = cuda_backend("NF4 quantize");
      check_launch(api,
                   api.quantize_nf4(x.data_ptr(), element_type(x.scalar_type()), q.packed.data_ptr<uint8_t>(),
                                    q.absmax.data_ptr<float>(), n, blocksize, x.device().index()),
                   "NF4 quantize");
    } else if (x.scalar_type() == at::kFloat) {
      quantize_cpu(x.data_ptr<float>(), n, blocksize, q.packed.data_ptr<uint8_t>(), q.absmax.data_ptr<float>());
    } else if (x.scalar_type() == at::kHalf) {
      quantize_cpu(x.data_ptr<at::Half>(), n, blocksize, q.packed.data_ptr<uint8_t>(), q.absmax.data_ptr<float>());
    } else {
      quantize_cpu(x.data_ptr<at::BFloat16>(), n, blocksize, q.packed.data_ptr<uint8_t>(), q.absmax.data_ptr<float>());
    }
  }
  if (double_quant) {
    // The statistics are small (one float per block): quantize them on the CPU on every device,
    // so CPU and CUDA runs give the same bits. The mean is a LibTorch reduction, as in bitsandbytes.
    at::Tensor absmax = q.absmax.to(at::kCPU);
    at::Tensor offset = absmax.mean();
    at::Tensor centered = (absmax - offset).contiguous();
    NestedAbsmax nested;
    nested.offset = offset.item<float>();
    nested.code_map = signed_dynamic_map();
    nested.codes = at::empty({absmax.numel()}, at::kByte);
    nested.absmax = at::empty({(absmax.numel() + kNestedBlocksize - 1) / kNestedBlocksize}, at::kFloat);
    quantize_blockwise_8bit(centered.data_ptr<float>(), centered.numel(), nested.code_map.data_ptr<float>(),
                            nested.codes.data_ptr<uint8_t>(), nested.absmax.data_ptr<float>());
    const at::Device device = x.device();
    nested.codes = nested.codes.to(device);
    nested.absmax = nested.absmax.to(device);
    nested.code_map = nested.code_map.to(device);
    q.nested = std::move(nested);
    q.absmax = at::Tensor();
  }
  return q;
}

// The parts of a quantized tensor the kernels read through raw pointers: on the packed bytes'
// device, and as long as the element count and blocksize imply (a short one would be read past
// its end). Loaders check files with better messages; this guards every other caller.
static void check_parts(const Nf4Tensor& q, const char* what) {
  const int64_t nblocks = q.blocksize > 0 ? (q.numel() + q.blocksize - 1) / q.blocksize : -1;
  auto check = [&](const at::Tensor& t, const char* part, int64_t at_least) {
    if (!t.defined() || t.device() != q.packed.device() || t.numel() < at_least)
      throw std::invalid_argument(fmt::format("{}: the {} must be on {} with at least {} elements", what, part,
                                              q.packed.device().str(), at_least));
  };
  if (q.blocksize <= 0) throw std::invalid_argument(fmt::format("{}: blocksize {} is not positive", what, q.blocksize));
  check(q.packed, "packed weight", (q.numel() + 1) / 2);
  if (!q.nested) return check(q.absmax, "absmax", nblocks);
  check(q.nested->codes, "nested absmax codes", nblocks);
  check(q.nested->absmax, "nested absmax", (nblocks + kNestedBlocksize - 1) / kNestedBlocksize);
  check(q.nested->code_map, "nested code map", 256);
}

at::Tensor block_absmax(const Nf4Tensor& q) {
  if (!q.nested) return q.absmax;
  check_parts(q, "NF4 nested absmax decode");
  const auto& nest = *q.nested;
  const int64_t n = nest.codes.numel();
  at::Tensor out = at::empty({n}, nest.codes.options().dtype(at::kFloat));
  if (nest.codes.is_cuda()) {
    const auto& api = cuda_backend("NF4 nested absmax decode");
    at::Tensor codes = nest.codes.contiguous();
    at::Tensor absmax2 = nest.absmax.contiguous();
    at::Tensor code_map = nest.code_map.contiguous();
    check_launch(api,
                 api.decode_nested_absmax(codes.data_ptr<uint8_t>(), absmax2.data_ptr<float>(),
                                          code_map.data_ptr<float>(), nest.offset, out.data_ptr<float>(), n,
                                          out.device().index()),
                 "NF4 nested absmax decode");
    return out;
  }
  at::Tensor codes = nest.codes.contiguous();
  at::Tensor absmax2 = nest.absmax.contiguous();
  at::Tensor code_map = nest.code_map.contiguous();
  const uint8_t* c = codes.data_ptr<uint8_t>();
  const float* a2 = absmax2.data_ptr<float>();
  const float* map = code_map.data_ptr<float>();
  float* o = out.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    const float decoded = map[c[i]] * a2[i / kNestedBlocksize];  // rounded to float here,
    o[i] = decoded + nest.offset;                                 // then the offset added
  }
  return out;
}

void dequantize_nf4_into(const Nf4Tensor& q, at::Tensor& out) {
  check_dtype(out.scalar_type(), "dequantize");
  const int64_t n = q.numel();
  if (out.numel() != n || !out.is_contiguous())
    throw std::invalid_argument(fmt::format("NF4 dequantize: output needs {} contiguous elements, got {}", n, out.numel()));
  if (out.device() != q.packed.device())
    throw std::invalid_argument("NF4 dequantize: output and packed weight are on different devices");
  if (n == 0) return;
  check_parts(q, "NF4 dequantize");
  at::Tensor absmax = block_absmax(q).contiguous();
  at::Tensor packed = q.packed.contiguous();
  if (packed.is_cuda()) {
    const auto& api = cuda_backend("NF4 dequantize");
    check_launch(api,
                 api.dequantize_nf4(packed.data_ptr<uint8_t>(), absmax.data_ptr<float>(), out.data_ptr(),
                                    element_type(out.scalar_type()), n, q.blocksize, out.device().index()),
                 "NF4 dequantize");
    return;
  }
  const uint8_t* p = packed.data_ptr<uint8_t>();
  const float* a = absmax.data_ptr<float>();
  switch (out.scalar_type()) {
    case at::kFloat: dequantize_cpu(p, a, out.data_ptr<float>(), n, q.blocksize); break;
    case at::kHalf: dequantize_cpu(p, a, out.data_ptr<at::Half>(), n, q.blocksize); break;
    default: dequantize_cpu(p, a, out.data_ptr<at::BFloat16>(), n, q.blocksize); break;
  }
}

at::Tensor dequantize_nf4(const Nf4Tensor& q, std::optional<at::ScalarType> dtype) {
  at::Tensor out = at::empty(q.shape, q.packed.options().dtype(dtype.value_or(q.dtype)));
  dequantize_nf4_into(q, out);
  return out;
}

Nf4Tensor to_device(const Nf4Tensor& q, const at::Device& device) {
  Nf4Tensor r = q;
  r.packed = q.packed.to(device);
  if (q.absmax.defined()) r.absmax = q.absmax.to(device);
  if (q.nested) {
    r.nested->codes = q.nested->codes.to(device);
    r.nested->absmax = q.nested->absmax.to(device);
    r.nested->code_map = q.nested->code_map.to(device);
  }
  return r;
}

}  // namespace autotrain::quant
