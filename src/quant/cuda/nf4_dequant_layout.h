// How the CUDA NF4 dequantize kernel splits its work, in plain C++ that nvcc and the host
// compiler both build: the kernel (nf4_kernels.cu) runs these functions on the GPU, and
// tests/unit/quant/nf4_unit_test.cpp (Nf4CudaLayout) runs the same ones over a simulated grid on the CPU, so the
// indexing, nibble order and scale lookup are checked bit for bit on machines without a GPU.
//
// The layout is chosen for bandwidth (the kernel moves ~4-5 output bytes per packed byte):
// - The output is cut into chunks of 16 bytes, one vector store: 8 elements of a 16-bit type or
//   4 of fp32, whose codes are one packed word of 4 or 2 bytes.
// - A warp works on a tile of 32 x kUnroll chunks. At unrolled step u, lane l takes chunk
//   u * 32 + l of the tile, so every step's loads and stores are contiguous across the warp
//   (fully coalesced), and each lane has kUnroll independent loads (16 packed bytes) in flight
//   before it decodes the first.
// - A chunk lies inside one quantization block when the blocksize is a power of two no smaller
//   than the chunk; its scale index is then a shift, not a 64-bit division.
#pragma once

#include <cstdint>
#include <type_traits>

#if defined(__CUDACC__)
#define AUTOTRAIN_HOST_DEVICE __host__ __device__ __forceinline__
#define AUTOTRAIN_UNROLL _Pragma("unroll")
#else
#define AUTOTRAIN_HOST_DEVICE inline
#define AUTOTRAIN_UNROLL
#endif

namespace autotrain::quant::cuda::layout {

template <int kElementBytes>
struct Dequant {
  static_assert(kElementBytes == 2 || kElementBytes == 4, "fp16/bf16 or fp32 output");
  static constexpr int kChunkElements = 16 / kElementBytes;
  static constexpr int kWordBytes = kChunkElements / 2;  // packed bytes behind one chunk
  static constexpr int kUnroll = 16 / kWordBytes;        // chunks per lane and tile
  static constexpr int64_t kTileChunks = 32 * static_cast<int64_t>(kUnroll);
  using Word = std::conditional_t<kWordBytes == 4, uint32_t, uint16_t>;

  // log2(blocksize / kChunkElements), or -1 when the tiled path cannot take this blocksize.
  AUTOTRAIN_HOST_DEVICE static int scale_shift(int64_t blocksize) {
    if (blocksize < kChunkElements || (blocksize & (blocksize - 1)) != 0) return -1;
    int shift = 0;
    while ((int64_t{kChunkElements} << shift) < blocksize) ++shift;
    return shift;
  }
  // Whole chunks of n elements; the rest (fewer than kChunkElements) goes to the scalar kernel.
  AUTOTRAIN_HOST_DEVICE static int64_t chunks(int64_t n) { return n / kChunkElements; }
  AUTOTRAIN_HOST_DEVICE static int64_t tiles(int64_t chunks) { return (chunks + kTileChunks - 1) / kTileChunks; }
  // The launch: 8 warps per CUDA block; a grid-stride loop over tiles past the grid's cap.
  static constexpr int kThreads = 256;
  AUTOTRAIN_HOST_DEVICE static int64_t blocks(int64_t chunks) {
    const int64_t wanted = (tiles(chunks) + kThreads / 32 - 1) / (kThreads / 32);
    return wanted < kMaxBlocks ? wanted : kMaxBlocks;
  }
  static constexpr int64_t kMaxBlocks = 65535LL * 16;
  AUTOTRAIN_HOST_DEVICE static int64_t chunk_of(int64_t tile, int step, int lane) {
    return tile * kTileChunks + static_cast<int64_t>(step) * 32 + lane;
  }
};

// Decodes one packed word into its chunk's elements: the byte at the lower address comes first
// (little-endian load), and each byte holds element 2k in its high nibble and 2k+1 in its low
// one. emit(k, value_2k, value_2k1) receives float32 products level * scale, rounded once.
template <int kWordBytes, typename Word, typename Emit>
AUTOTRAIN_HOST_DEVICE void decode_word(Word word, float scale, const float* levels, Emit&& emit) {
  AUTOTRAIN_UNROLL
  for (int k = 0; k < kWordBytes; ++k) {
    const unsigned byte = (static_cast<unsigned>(word) >> (8 * k)) & 0xFFu;
    emit(k, levels[byte >> 4] * scale, levels[byte & 0xFu] * scale);
  }
}

}  // namespace autotrain::quant::cuda::layout
