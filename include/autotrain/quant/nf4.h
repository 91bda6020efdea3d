// NF4 blockwise 4-bit quantization, bit-compatible with bitsandbytes (falcon-qlora-spec.md §3).
//
// Layout, as bitsandbytes stores it: the tensor is flattened row-major and cut into blocks of
// `blocksize` elements; each block keeps its absmax (float32) and each element the index of the
// nearest of 16 NF4 levels, two per byte with element 2j in the high nibble. Optional double
// quantization stores the absmax values themselves as 8-bit codes of a signed dynamic map in
// blocks of 256, around their mean.
//
// quantize_nf4 reproduces the pinned bitsandbytes CPU backend exactly (reciprocal multiply,
// clamp to [-1, 1], ties to the lower level, all-zero blocks as code 7, an odd tail padded with
// the code of 0.0). With double quantization the nested codes are those of bitsandbytes' native
// CPU 8-bit kernel, which picks the code nearest to the value snapped to a 65536-point grid on
// [-1, 1] rather than the code nearest to the value (see quantize_blockwise_8bit in nf4.cpp); they
// are computed on the host for every device. dequantize_nf4 computes level * absmax in float32
// and rounds once to the output dtype. Both dispatch on the device: CPU (vectorised,
// multi-threaded) or CUDA kernels that give the same bits.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include <ATen/core/Tensor.h>

namespace autotrain::quant {

inline constexpr int64_t kNf4DefaultBlocksize = 64;
inline constexpr int64_t kNestedBlocksize = 256;

// The 16 NF4 levels: bitsandbytes' hard-coded table, index = code.
const std::array<float, 16>& nf4_levels();
// The 15 decision thresholds between adjacent levels, as bitsandbytes computes them.
const std::array<float, 15>& nf4_thresholds();

// bitsandbytes' create_dynamic_map(signed=True): 256 sorted float32 values in [-0.993, 1],
// built with the same LibTorch ops so its last bits match the Python package on this build.
at::Tensor signed_dynamic_map();

// Double quantization of the per-block absmax values.
struct NestedAbsmax {
  at::Tensor codes;     // uint8 [nblocks]: index into code_map
  at::Tensor absmax;    // float32 [ceil(nblocks / 256)]
  at::Tensor code_map;  // float32 [256]
  float offset = 0.0f;  // mean of the absmax values, added back after decoding
};

struct Nf4Tensor {
  at::Tensor packed;                  // uint8 [(numel + 1) / 2, 1]
  at::Tensor absmax;                  // float32 [nblocks]; undefined when `nested` is set
  std::optional<NestedAbsmax> nested;
  int64_t blocksize = kNf4DefaultBlocksize;
  std::vector<int64_t> shape;          // the original shape
  at::ScalarType dtype = at::kFloat;   // the original dtype (default output of dequantize)

  int64_t numel() const;
  int64_t num_blocks() const { return (numel() + blocksize - 1) / blocksize; }
  // Bytes held on the device: packed weights, and statistics (absmax or its nested form).
  int64_t packed_bytes() const;
  int64_t statistics_bytes() const;
};

// Quantizes a float32/float16/bfloat16 tensor (any shape, any device). blocksize: 64, 128 or 256
// (bitsandbytes also accepts 32..4096; those work too). Throws std::invalid_argument on a bad dtype
// or blocksize.
Nf4Tensor quantize_nf4(const at::Tensor& x, int64_t blocksize = kNf4DefaultBlocksize, bool double_quant = false);

// The per-block absmax as float32 [nblocks], decoding the nested form if there is one.
at::Tensor block_absmax(const Nf4Tensor& q);

// Dequantizes to `dtype` (default: the original dtype), in the original shape.
at::Tensor dequantize_nf4(const Nf4Tensor& q, std::optional<at::ScalarType> dtype = std::nullopt);

// Dequantizes into `out` (contiguous, q.numel() elements, float32/float16/bfloat16, on the
// device of q.packed). Lets a caller reuse one buffer for every layer.
void dequantize_nf4_into(const Nf4Tensor& q, at::Tensor& out);

// The same quantized tensor on another device (packed bytes and statistics are copied as is).
Nf4Tensor to_device(const Nf4Tensor& q, const at::Device& device);

}  // namespace autotrain::quant
