// CUDA kernels for NF4, on raw pointers and a stream (no LibTorch headers, so nvcc compiles
// them quickly and they can be reused outside LibTorch). Results are bit-identical to the CPU
// reference in src/quant/nf4.cpp. Each launcher returns the cudaError_t of the launch as int.
#pragma once

#include <cstdint>

namespace autotrain::quant::cuda {

enum class ElementType { F32, F16, BF16 };

// out[i] = T(levels[nibble_i] * absmax[i / blocksize]) for i < n.
int launch_dequantize_nf4(const uint8_t* packed, const float* absmax, void* out, ElementType out_type, int64_t n,
                          int64_t blocksize, void* stream);

// Blockwise quantization of n elements: writes absmax[nblocks] and packed[(n + 1) / 2].
int launch_quantize_nf4(const void* x, ElementType in_type, uint8_t* packed, float* absmax, int64_t n,
                        int64_t blocksize, void* stream);

// absmax[i] = float(code_map[codes[i]] * nested_absmax[i / 256]) + offset (two roundings, as
// bitsandbytes does it in two kernels).
int launch_decode_nested_absmax(const uint8_t* codes, const float* nested_absmax, const float* code_map, float offset,
                                float* absmax, int64_t n, void* stream);

}  // namespace autotrain::quant::cuda
