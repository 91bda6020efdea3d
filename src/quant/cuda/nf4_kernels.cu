// NF4 kernels. Exactness notes: every product and quotient is a single IEEE operation in float32
// (nvcc's default -prec-div=true, no -use_fast_math, denormals kept); the nested decode uses
// __fmul_rn/__fadd_rn so the compiler cannot fuse them into one FMA rounding.
#include "nf4_kernels.h"

#include "../nf4_levels.h"
#include "nf4_dequant_layout.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>

namespace autotrain::quant::cuda {

namespace {

__constant__ float kLevels[16] = {AUTOTRAIN_NF4_LEVELS};

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Midpoints between adjacent levels, computed in float32 exactly as on the host.
__device__ __forceinline__ unsigned nf4_code(float s, const float* lv) {
  unsigned c = 0;
#pragma unroll
  for (int k = 0; k < 15; ++k) c += ((lv[k] + lv[k + 1]) / 2.0f) < s ? 1u : 0u;
  return c;
}

__device__ __forceinline__ float clamp_unit(float v) { return fminf(fmaxf(v, -1.0f), 1.0f); }

// --- dequantize -------------------------------------------------------------------------
// Tiled path (nf4_dequant_layout.h): coalesced 16-byte stores, kUnroll coalesced word loads in
// flight per lane, the scale index a shift. Power-of-two blocksizes (all that bitsandbytes writes).
template <typename T>
__device__ __forceinline__ void store_pair(T* e, int k, float first, float second);
template <>
__device__ __forceinline__ void store_pair<float>(float* e, int k, float first, float second) {
  e[2 * k] = first;
  e[2 * k + 1] = second;
}
template <>
__device__ __forceinline__ void store_pair<__half>(__half* e, int k, float first, float second) {
  reinterpret_cast<__half2*>(e)[k] = __floats2half2_rn(first, second);  // .x (lower address) = first
}
template <>
__device__ __forceinline__ void store_pair<__nv_bfloat16>(__nv_bfloat16* e, int k, float first, float second) {
  reinterpret_cast<__nv_bfloat162*>(e)[k] = __floats2bfloat162_rn(first, second);
}

template <typename T>
__global__ void __launch_bounds__(layout::Dequant<sizeof(T)>::kThreads) dequantize_tiles(const uint8_t* __restrict__ packed,
                                                        const float* __restrict__ absmax, T* __restrict__ out,
                                                        int64_t chunks, int scale_shift) {
  using L = layout::Dequant<sizeof(T)>;
  __shared__ float lut[16];
  if (threadIdx.x < 16) lut[threadIdx.x] = kLevels[threadIdx.x];
  __syncthreads();
  const auto* words = reinterpret_cast<const typename L::Word*>(packed);
  auto* dst = reinterpret_cast<uint4*>(out);
  const int lane = threadIdx.x & 31;
  const int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
  const int64_t tiles = L::tiles(chunks);
  for (int64_t tile = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5; tile < tiles; tile += warps) {
    typename L::Word word[L::kUnroll];
    float scale[L::kUnroll];
#pragma unroll
    for (int u = 0; u < L::kUnroll; ++u) {  // every load issued before the first use
      const int64_t c = L::chunk_of(tile, u, lane);
      if (c < chunks) {
        word[u] = __ldg(&words[c]);
        scale[u] = __ldg(&absmax[c >> scale_shift]);
      }
    }
#pragma unroll
    for (int u = 0; u < L::kUnroll; ++u) {
      const int64_t c = L::chunk_of(tile, u, lane);
      if (c >= chunks) break;
      alignas(16) T chunk[L::kChunkElements];
      layout::decode_word<L::kWordBytes>(word[u], scale[u], lut, [&](int k, float first, float second) {
        store_pair<T>(chunk, k, first, second);
      });
      dst[c] = *reinterpret_cast<const uint4*>(chunk);
    }
  }
}

// General path (any blocksize, and the tail of the fast path): one element per thread.
template <typename T>
__global__ void dequantize_scalar(const uint8_t* __restrict__ packed, const float* __restrict__ absmax,
                                  T* __restrict__ out, int64_t begin, int64_t n, int64_t blocksize) {
  for (int64_t i = begin + blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const uint8_t byte = packed[i >> 1];
    const uint32_t nib = (i & 1) ? (byte & 0xF) : (byte >> 4);
    out[i] = from_float<T>(kLevels[nib] * absmax[i / blocksize]);
  }
}

template <typename T>
int dequantize_typed(const uint8_t* packed, const float* absmax, T* out, int64_t n, int64_t blocksize,
                     cudaStream_t stream) {
  if (blocksize <= 0) return static_cast<int>(cudaErrorInvalidValue);
  using L = layout::Dequant<sizeof(T)>;
  int64_t done = 0;
  const int shift = L::scale_shift(blocksize);
  const bool aligned = reinterpret_cast<uintptr_t>(packed) % L::kWordBytes == 0 &&
                       reinterpret_cast<uintptr_t>(out) % 16 == 0;
  if (shift >= 0 && aligned) {
    const int64_t chunks = L::chunks(n);
    if (chunks > 0) {
      dequantize_tiles<T><<<(unsigned)L::blocks(chunks), L::kThreads, 0, stream>>>(packed, absmax, out, chunks,
                                                                                 shift);
    }
    done = chunks * L::kChunkElements;
  }
  if (done < n) {
    const int threads = 256;
    const int64_t blocks = std::min<int64_t>((n - done + threads - 1) / threads, 65535LL * 8);
    dequantize_scalar<T><<<(unsigned)blocks, threads, 0, stream>>>(packed, absmax, out, done, n, blocksize);
  }
  return static_cast<int>(cudaGetLastError());
}

// --- quantize ---------------------------------------------------------------------------
// One warp per quantization block: a warp-wide absmax, then each lane codes pairs of elements
// into whole bytes. Semantics of the CPU reference: full blocks multiply by the reciprocal of
// max(absmax, 1e-38), the partial last block divides by it and stores it.
template <typename T>
__global__ void quantize_warp_per_block(const T* __restrict__ x, uint8_t* __restrict__ packed,
                                        float* __restrict__ absmax, int64_t n, int64_t blocksize, int64_t nblocks,
                                        float floor_value) {
  __shared__ float lut[16];
  if (threadIdx.x < 16) lut[threadIdx.x] = kLevels[threadIdx.x];
  __syncthreads();
  const int lane = threadIdx.x & 31;
  const int64_t warp = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5;
  const int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
  for (int64_t b = warp; b < nblocks; b += warps) {
    const int64_t start = b * blocksize;
    const int64_t len = min(blocksize, n - start);
    float amax = 0.0f;
    for (int64_t i = lane; i < len; i += 32) amax = fmaxf(amax, fabsf(to_float(x[start + i])));
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    const bool full = len == blocksize;
    const float am = fmaxf(amax, floor_value);
    const float inv = 1.0f / am;
    if (lane == 0) absmax[b] = full ? amax : am;
    for (int64_t p = lane; p < (len + 1) / 2; p += 32) {
      const int64_t i = start + 2 * p;
      const float v0 = to_float(x[i]);
      const float s0 = clamp_unit(full ? v0 * inv : v0 / am);
      float s1 = 0.0f;  // an odd tail's low nibble is the code of 0.0
      if (2 * p + 1 < len) {
        const float v1 = to_float(x[i + 1]);
        s1 = clamp_unit(full ? v1 * inv : v1 / am);
      }
      packed[i >> 1] = static_cast<uint8_t>(nf4_code(s0, lut) << 4 | nf4_code(s1, lut));
    }
  }
}

template <typename T>
int quantize_typed(const T* x, uint8_t* packed, float* absmax, int64_t n, int64_t blocksize, cudaStream_t stream) {
  if (n == 0) return 0;  // an empty grid is an invalid launch
  if (blocksize <= 0) return static_cast<int>(cudaErrorInvalidValue);
  const int64_t nblocks = (n + blocksize - 1) / blocksize;
  const int threads = 256;  // 8 warps, 8 quantization blocks per CUDA block
  const int64_t blocks = std::min<int64_t>((nblocks + 7) / 8, 65535LL * 16);
  // 1e-38 rounded to float32 (a denormal), as bitsandbytes' clamp(min=1e-38) sees it.
  const float floor_value = static_cast<float>(1e-38);
  quantize_warp_per_block<T><<<(unsigned)blocks, threads, 0, stream>>>(x, packed, absmax, n, blocksize, nblocks,
                                                                      floor_value);
  return static_cast<int>(cudaGetLastError());
}

__global__ void decode_nested(const uint8_t* __restrict__ codes, const float* __restrict__ nested_absmax,
                              const float* __restrict__ code_map, float offset, float* __restrict__ absmax, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    absmax[i] = __fadd_rn(__fmul_rn(code_map[codes[i]], nested_absmax[i / 256]), offset);
}

}  // namespace

int launch_dequantize_nf4(const uint8_t* packed, const float* absmax, void* out, ElementType out_type, int64_t n,
                          int64_t blocksize, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (out_type) {
    case ElementType::F32: return dequantize_typed(packed, absmax, static_cast<float*>(out), n, blocksize, s);
    case ElementType::F16: return dequantize_typed(packed, absmax, static_cast<__half*>(out), n, blocksize, s);
    case ElementType::BF16: return dequantize_typed(packed, absmax, static_cast<__nv_bfloat16*>(out), n, blocksize, s);
  }
  return static_cast<int>(cudaErrorInvalidValue);
}

int launch_quantize_nf4(const void* x, ElementType in_type, uint8_t* packed, float* absmax, int64_t n,
                        int64_t blocksize, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (in_type) {
    case ElementType::F32: return quantize_typed(static_cast<const float*>(x), packed, absmax, n, blocksize, s);
    case ElementType::F16: return quantize_typed(static_cast<const __half*>(x), packed, absmax, n, blocksize, s);
    case ElementType::BF16: return quantize_typed(static_cast<const __nv_bfloat16*>(x), packed, absmax, n, blocksize, s);
  }
  return static_cast<int>(cudaErrorInvalidValue);
}

int launch_decode_nested_absmax(const uint8_t* codes, const float* nested_absmax, const float* code_map, float offset,
                                float* absmax, int64_t n, void* stream) {
  if (n == 0) return 0;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65535LL * 8);
  decode_nested<<<(unsigned)blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(codes, nested_absmax, code_map,
                                                                                     offset, absmax, n);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace autotrain::quant::cuda
