// NF4 properties that hold without a reference: the layout rules of the spec (§3.2), the
// dynamic map's shape, error handling and the error bound of the round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "autotrain/quant/nf4.h"
#include "nf4_dequant_layout.h"  // src/quant/cuda: the CUDA dequantize kernel's work split

namespace autotrain::quant {
namespace {

TEST(Nf4, LevelsAndThresholdsMatchTheSpecBits) {
  // Bit patterns from falcon-qlora-spec.md §3.1 and §3.2.
  const uint32_t levels[16] = {0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f,
                               0xbdba7871, 0x00000000, 0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a,
                               0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000};
  const uint32_t thresholds[15] = {0xbf591cd8, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec,
                                   0xbe0d38bc, 0xbd3a7871, 0x3d22faff, 0x3df64862, 0x3e5067e0,
                                   0x3e9582d4, 0x3ec753f9, 0x3f006d04, 0x3f248daf, 0x3f5c89da};
  for (int i = 0; i < 16; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &nf4_levels()[i], 4);
    EXPECT_EQ(bits, levels[i]) << i;
  }
  for (int i = 0; i < 15; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &nf4_thresholds()[i], 4);
    EXPECT_EQ(bits, thresholds[i]) << i;
  }
}

TEST(Nf4, NibbleOrderAndOddTail) {
  // Block absmax 1: values are their own scaled values. Element 0 -> high nibble.
  at::Tensor x = at::tensor({-1.0f, 1.0f, 0.0f});
  auto q = quantize_nf4(x);
  ASSERT_EQ(q.packed.numel(), 2);
  EXPECT_EQ(q.packed[0][0].item<uint8_t>(), 0x0F);
  EXPECT_EQ(q.packed[1][0].item<uint8_t>(), 0x77);  // 0.0 then the pad, also the code of 0.0
  EXPECT_EQ(q.packed.sizes(), (std::vector<int64_t>{2, 1}));
}

TEST(Nf4, TiesGoToTheLowerCode) {
  const auto& t = nf4_thresholds();
  std::vector<float> v(64, 0.0f);
  v[0] = 1.0f;  // absmax 1
  for (int k = 0; k < 15; ++k) v[2 + k] = t[k];
  auto q = quantize_nf4(at::tensor(v));
  at::Tensor deq = dequantize_nf4(q);
  for (int k = 0; k < 15; ++k) EXPECT_EQ(deq[2 + k].item<float>(), nf4_levels()[k]) << "threshold " << k;
}

TEST(Nf4, ZeroBlocksAndAbsmaxFloor) {
  auto full = quantize_nf4(at::zeros({64}));
  EXPECT_EQ(full.absmax[0].item<float>(), 0.0f);
  EXPECT_EQ(full.packed[0][0].item<uint8_t>(), 0x77);
  auto tail = quantize_nf4(at::zeros({70}));
  EXPECT_EQ(tail.absmax[1].item<float>(), static_cast<float>(1e-38));  // the partial block stores the floor
  EXPECT_TRUE(at::equal(dequantize_nf4(tail), at::zeros({70})));
}

TEST(Nf4, RoundTripErrorIsBounded) {
  at::manual_seed(0);
  at::Tensor w = at::randn({256, 192});
  for (bool dq : {false, true}) {
    auto q = quantize_nf4(w, 64, dq);
    at::Tensor back = dequantize_nf4(q);
    EXPECT_EQ(back.sizes(), w.sizes());
    // The widest gap between NF4 levels is 0.3039 (between -1 and -0.6962), so the error is at
    // most half of it times the block absmax (plus the nested absmax error when double quantized).
    at::Tensor blocks = w.reshape({-1, 64}).abs().amax(1, true);
    at::Tensor err = (back - w).abs().reshape({-1, 64}) / blocks;
    EXPECT_LE(err.max().item<float>(), dq ? 0.16f : 0.152f);
    EXPECT_LT((back - w).pow(2).mean().sqrt().item<float>(), 0.12f);
  }
}

TEST(Nf4, NestedStatisticsFollowTheBitsandbytesCpuKernel) {
  // Equal block absmaxes centre to a nested block of zeros: bitsandbytes' CPU kernel stores
  // absmax 0 and code 0 (not the code of 0.0), which still decodes to the offset.
  auto q = quantize_nf4(at::full({64 * 300}, 0.375f), 64, true);
  ASSERT_TRUE(q.nested.has_value());
  EXPECT_EQ(q.nested->offset, 0.375f);
  EXPECT_TRUE(at::equal(q.nested->codes, at::zeros({300}, at::kByte)));
  EXPECT_TRUE(at::equal(q.nested->absmax, at::zeros({2})));
  EXPECT_TRUE(at::equal(block_absmax(q), at::full({300}, 0.375f)));

  // A scaled value s is snapped to the grid -1 + 2k/65535 before its code is looked up, so near
  // a midpoint between two codes, and among the dense codes near 0, the code can differ from the
  // nearest one. One nested block: the absmaxes 1.5 and 0.5 (s = +-1) and 1 +- s/2, all exact
  // in float32 for s = j * 2^-22, around a mean of exactly 1. The expected codes are what
  // bitsandbytes 0.50.2 (CPU) gives for the same input.
  at::Tensor map = signed_dynamic_map();
  const float* m = map.data_ptr<float>();
  auto nearest = [&](float v) {
    int c = 0;
    while (c < 255 && (m[c] + m[c + 1]) / 2 < v) ++c;
    return c;
  };
  struct Case {
    int j;
    int code;  // bitsandbytes' code of s = j * 2^-22
  };
  for (const Case& c : {Case{8, 131}, Case{1009255, 200}, Case{2778667, 231}}) {
    const float v = std::ldexp(static_cast<float>(c.j), -22);
    SCOPED_TRACE(::testing::Message() << "s = " << v);
    at::Tensor x = at::zeros({4 * 64});
    x[0] = 1.5f;
    x[64] = 0.5f;
    x[128] = 1.0f + v / 2;
    x[192] = 1.0f - v / 2;
    auto r = quantize_nf4(x, 64, true);
    ASSERT_EQ(r.nested->offset, 1.0f);
    EXPECT_EQ(r.nested->absmax.item<float>(), 0.5f);
    EXPECT_NE(nearest(v), c.code);  // the case tells the grid lookup from a nearest-code search
    EXPECT_EQ(r.nested->codes[2].item<uint8_t>(), c.code);
  }
}

TEST(Nf4, MemoryAccounting) {
  auto q = quantize_nf4(at::randn({128, 128}), 64, false);
  EXPECT_EQ(q.packed_bytes(), 128 * 128 / 2);
  EXPECT_EQ(q.statistics_bytes(), 128 * 128 / 64 * 4);
  // Double quantization pays off once the 1 KiB code map is amortised: 8.1 instead of 32 bits
  // of statistics per 64 weights at this size.
  auto big = quantize_nf4(at::randn({1024, 1024}), 64, false);
  auto dq = quantize_nf4(at::randn({1024, 1024}), 64, true);
  EXPECT_LT(dq.statistics_bytes() * 3, big.statistics_bytes());
}

TEST(Nf4, DynamicMapShape) {
  at::Tensor m = signed_dynamic_map();
  ASSERT_EQ(m.numel(), 256);
  EXPECT_EQ(m[127].item<float>(), 0.0f);
  EXPECT_EQ(m[255].item<float>(), 1.0f);
  EXPECT_NEAR(m[0].item<float>(), -0.99296875f, 1e-6);
  EXPECT_TRUE(at::all(m.slice(0, 1) > m.slice(0, 0, -1)).item<bool>());
}

TEST(Nf4, RejectsBadInput) {
  EXPECT_THROW(quantize_nf4(at::ones({4}, at::kInt)), std::invalid_argument);
  EXPECT_THROW(quantize_nf4(at::ones({4}), 63), std::invalid_argument);
  auto q = quantize_nf4(at::ones({8}));
  at::Tensor wrong = at::empty({7});
  EXPECT_THROW(dequantize_nf4_into(q, wrong), std::invalid_argument);
  // Parts shorter than the shape implies are refused before a kernel reads past them.
  auto big = quantize_nf4(at::randn({1000}), 64, /*double_quant=*/true);
  at::Tensor out = at::empty({1000});
  auto short_codes = big;
  short_codes.nested->codes = big.nested->codes.narrow(0, 0, 3);
  EXPECT_THROW(dequantize_nf4_into(short_codes, out), std::invalid_argument);
  auto short_map = big;
  short_map.nested->code_map = big.nested->code_map.narrow(0, 0, 16);
  EXPECT_THROW(dequantize_nf4_into(short_map, out), std::invalid_argument);
  auto plain = quantize_nf4(at::randn({1000}), 64);
  plain.absmax = plain.absmax.narrow(0, 0, 15);  // 16 blocks
  EXPECT_THROW(dequantize_nf4_into(plain, out), std::invalid_argument);
  plain.packed = plain.packed.narrow(0, 0, 10);
  EXPECT_THROW(dequantize_nf4_into(plain, out), std::invalid_argument);
}

TEST(Nf4, DequantizeIntoReusesTheBuffer) {
  auto q = quantize_nf4(at::randn({64, 64}, at::kBFloat16));
  at::Tensor buffer = at::empty({64 * 64}, at::kBFloat16);
  void* before = buffer.data_ptr();
  dequantize_nf4_into(q, buffer);
  EXPECT_EQ(buffer.data_ptr(), before);
  EXPECT_TRUE(at::equal(buffer.view({64, 64}), dequantize_nf4(q)));
}

// The CUDA dequantize kernel's layout (src/quant/cuda/nf4_dequant_layout.h), run here over a
// simulated grid with the kernel's own index and decode functions: each chunk is written once,
// each step's lanes touch consecutive chunks, and the result equals the CPU reference bit for bit.
// The GPU test (nf4_gpu_test) checks the kernel itself; this checks the layout without a GPU.
template <typename T, at::ScalarType kType>
void simulate_cuda_dequantize(int64_t n, int64_t blocksize, int64_t max_blocks) {
  using L = cuda::layout::Dequant<sizeof(T)>;
  SCOPED_TRACE(::testing::Message() << "n=" << n << " bs=" << blocksize << " dtype=" << kType
                                    << " grid<=" << max_blocks);
  auto q = quantize_nf4(at::randn({n}) * 3, blocksize);
  const auto* packed = q.packed.data_ptr<uint8_t>();
  const float* absmax = q.absmax.data_ptr<float>();
  const int shift = L::scale_shift(blocksize);
  ASSERT_GE(shift, 0);
  ASSERT_EQ(int64_t{L::kChunkElements} << shift, blocksize);
  const int64_t chunks = L::chunks(n);
  EXPECT_LT(n - chunks * L::kChunkElements, L::kChunkElements);  // the scalar kernel's tail

  std::vector<T> out(static_cast<size_t>(chunks * L::kChunkElements));
  std::vector<int> writes(static_cast<size_t>(chunks), 0);
  const int64_t warps = std::min(L::blocks(chunks), max_blocks) * (L::kThreads / 32);
  const float* levels = nf4_levels().data();
  for (int64_t warp = 0; warp < warps; ++warp) {
    for (int64_t tile = warp; tile < L::tiles(chunks); tile += warps) {
      for (int u = 0; u < L::kUnroll; ++u) {
        for (int lane = 0; lane < 32; ++lane) {
          const int64_t c = L::chunk_of(tile, u, lane);
          if (lane > 0) {
            ASSERT_EQ(c, L::chunk_of(tile, u, lane - 1) + 1) << "a step's chunks are not contiguous";
          }
          if (c >= chunks) continue;
          typename L::Word word;
          std::memcpy(&word, packed + c * L::kWordBytes, sizeof word);  // the kernel's word load
          T* chunk = out.data() + c * L::kChunkElements;
          cuda::layout::decode_word<L::kWordBytes>(word, absmax[c >> shift], levels,
                                                   [&](int k, float first, float second) {
                                                     chunk[2 * k] = T(first);  // round to nearest even
                                                     chunk[2 * k + 1] = T(second);
                                                   });
          ++writes[static_cast<size_t>(c)];
        }
      }
    }
  }
  for (int64_t c = 0; c < chunks; ++c) ASSERT_EQ(writes[static_cast<size_t>(c)], 1) << "chunk " << c;
  at::Tensor expected = dequantize_nf4(q, kType).slice(0, 0, chunks * L::kChunkElements).contiguous();
  ASSERT_EQ(std::memcmp(out.data(), expected.data_ptr(), out.size() * sizeof(T)), 0) << "bits differ";
}

TEST(Nf4CudaLayout, SimulatedGridMatchesTheCpuReference) {
  at::manual_seed(5);
  for (int64_t n : {int64_t{7}, int64_t{8}, int64_t{1000}, int64_t{4544 * 3}, int64_t{4545 * 7 + 3}, int64_t{70001}}) {
    for (int64_t bs : {64, 128, 256}) {
      for (int64_t grid : {std::numeric_limits<int64_t>::max(), int64_t{1}}) {  // the real grid, and one block striding over every tile
        simulate_cuda_dequantize<float, at::kFloat>(n, bs, grid);
        simulate_cuda_dequantize<c10::Half, at::kHalf>(n, bs, grid);
        simulate_cuda_dequantize<c10::BFloat16, at::kBFloat16>(n, bs, grid);
      }
    }
  }
  using H = cuda::layout::Dequant<2>;
  using F = cuda::layout::Dequant<4>;
  EXPECT_EQ(H::kUnroll * H::kWordBytes, 16);  // 16 packed bytes in flight per lane
  EXPECT_EQ(F::kUnroll * F::kWordBytes, 16);
  EXPECT_EQ(H::scale_shift(64), 3);
  EXPECT_EQ(F::scale_shift(64), 4);
  EXPECT_EQ(H::scale_shift(96), -1);  // not a power of two: the scalar kernel
  EXPECT_EQ(H::scale_shift(4), -1);   // smaller than a chunk
  EXPECT_EQ(H::blocks(int64_t{1} << 40), H::kMaxBlocks);
}

}  // namespace
}  // namespace autotrain::quant
