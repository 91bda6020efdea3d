// libautotrain_cuda.so: the code that needs LibTorch's CUDA libraries, behind the C ABI of
// include/autotrain/device/cuda_backend.h. Linking this library (and so libtorch_cuda) is what
// registers LibTorch's CUDA kernels; the program loads it only when it may use a GPU.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>

#include "autotrain/device/cuda_backend.h"
#include "../quant/cuda/nf4_kernels.h"

namespace {

using autotrain::device::CudaBackendApi;
using autotrain::device::CudaDeviceInfo;
namespace kernels = autotrain::quant::cuda;

kernels::ElementType element_type(int t) {
  switch (static_cast<autotrain::device::ElementType>(t)) {
    case autotrain::device::ElementType::F32: return kernels::ElementType::F32;
    case autotrain::device::ElementType::F16: return kernels::ElementType::F16;
    default: return kernels::ElementType::BF16;
  }
}

// Nothing may throw across the C ABI: a LibTorch error (an invalid device, an allocator that
// never allocated on that device) becomes an error code.
// The exception's message goes to stderr first: the code alone ("unknown error") would lose it.
template <typename F>
int no_throw(F&& f) noexcept {
  try {
    return f();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "autotrain CUDA backend: %s\n", e.what());
    return static_cast<int>(cudaErrorUnknown);
  } catch (...) {
    return static_cast<int>(cudaErrorUnknown);
  }
}

void* stream_of(int device) { return at::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream(); }

int dequantize_nf4(const uint8_t* packed, const float* absmax, void* out, int out_type, int64_t n, int64_t blocksize,
                   int device) {
  return no_throw([&] {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    return kernels::launch_dequantize_nf4(packed, absmax, out, element_type(out_type), n, blocksize, stream_of(device));
  });
}

int quantize_nf4(const void* x, int in_type, uint8_t* packed, float* absmax, int64_t n, int64_t blocksize,
                 int device) {
  return no_throw([&] {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    return kernels::launch_quantize_nf4(x, element_type(in_type), packed, absmax, n, blocksize, stream_of(device));
  });
}

int decode_nested_absmax(const uint8_t* codes, const float* nested_absmax, const float* code_map, float offset,
                         float* absmax, int64_t n, int device) {
  return no_throw([&] {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    return kernels::launch_decode_nested_absmax(codes, nested_absmax, code_map, offset, absmax, n, stream_of(device));
  });
}

const char* error_string(int error) { return cudaGetErrorString(static_cast<cudaError_t>(error)); }

int64_t peak_reserved_bytes(int device) {
  try {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    return stats.reserved_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  } catch (...) {
    return -1;  // the allocator has not been used on that device
  }
}

int device_info(int device, CudaDeviceInfo* out) {
  cudaDeviceProp p{};
  if (cudaError_t err = cudaGetDeviceProperties(&p, device); err != cudaSuccess) return static_cast<int>(err);
  std::memset(out, 0, sizeof(*out));
  std::snprintf(out->name, sizeof(out->name), "%s", p.name);
  out->capability_major = p.major;
  out->capability_minor = p.minor;
  out->total_memory_bytes = static_cast<uint64_t>(p.totalGlobalMem);
  return 0;
}

int synchronize(int device) {
  return no_throw([&] {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    return static_cast<int>(cudaDeviceSynchronize());
  });
}

constexpr CudaBackendApi kApi{autotrain::device::kCudaBackendAbiVersion,
                              sizeof(CudaBackendApi),
                              dequantize_nf4,
                              quantize_nf4,
                              decode_nested_absmax,
                              error_string,
                              peak_reserved_bytes,
                              device_info,
                              synchronize};

}  // namespace

extern "C" __attribute__((visibility("default"))) const CudaBackendApi* autotrain_cuda_backend_api() { return &kApi; }
