// The CUDA backend: everything that needs LibTorch's CUDA libraries (libtorch_cuda, cuBLAS,
// cuDNN, NCCL...) lives in a plugin, libautotrain_cuda.so, loaded on first use. A process that
// never touches a GPU (CPU runs, CI smoke runs, `config`, `data`, `tokenize`) then never maps
// those libraries: about 400 MB less resident memory and a faster start than linking them.
//
// Loading the plugin also registers LibTorch's CUDA kernels and hooks, so after a successful
// load at::hasCUDA() and CUDA tensors work as usual. LibTorch decides once, at its first CUDA
// query (at::hasCUDA() and the like), whether CUDA exists: code must ask cuda_available()
// before any such query, which is why commands choose their device first.
//
// The plugin is looked for at $AUTOTRAIN_CUDA_BACKEND if set, else beside the running
// executable (a build folder), else in ../lib/autotrain/ from it (an installed tree).
#pragma once

#include <cstdint>
#include <string>

namespace autotrain::device {

// Element types the NF4 kernels read or write (the `int` fields of the ABI below).
enum class ElementType : int { F32 = 0, F16 = 1, BF16 = 2 };

struct CudaDeviceInfo {
  char name[256];
  int capability_major;
  int capability_minor;
  uint64_t total_memory_bytes;
};

// The C ABI between the program and the plugin. Functions taking `device` run on that GPU's
// current LibTorch stream; those returning int return a cudaError_t (0 = success).
struct CudaBackendApi {
  uint32_t abi_version;
  uint32_t struct_size;
  // NF4 (see include/autotrain/quant/nf4.h for the semantics; bit-identical to the CPU path).
  int (*dequantize_nf4)(const uint8_t* packed, const float* absmax, void* out, int out_type, int64_t n,
                        int64_t blocksize, int device);
  int (*quantize_nf4)(const void* x, int in_type, uint8_t* packed, float* absmax, int64_t n, int64_t blocksize,
                      int device);
  int (*decode_nested_absmax)(const uint8_t* codes, const float* nested_absmax, const float* code_map, float offset,
                              float* absmax, int64_t n, int device);
  const char* (*error_string)(int error);
  // Peak bytes LibTorch's caching allocator has reserved on `device` since the process began;
  // -1 where it cannot tell (nothing allocated there yet).
  int64_t (*peak_reserved_bytes)(int device);
  int (*device_info)(int device, CudaDeviceInfo* out);
  // Waits for all work queued on `device` (benchmarks time kernels with it).
  int (*synchronize)(int device);
};

inline constexpr uint32_t kCudaBackendAbiVersion = 1;
inline constexpr const char* kCudaBackendEntryPoint = "autotrain_cuda_backend_api";

// The plugin's API, loading it on the first call (thread-safe); nullptr if it cannot be
// loaded, with the reason in cuda_backend_status(). Without an NVIDIA driver on the machine the
// plugin is not loaded at all unless `even_without_driver` (for `setup`'s report and tests).
const CudaBackendApi* cuda_backend(bool even_without_driver = false);

// Where the plugin was loaded from, or why it was not (empty before the first attempt).
std::string cuda_backend_status();

// True when the plugin is loaded and LibTorch sees at least one CUDA device. The one question
// code should ask before choosing a CUDA device.
bool cuda_available();

// For a device setting of "auto" (`setting` names it in messages, e.g. "DEVICE=auto"): whether
// to run on the GPU. When the machine has an NVIDIA driver but CUDA is not usable, says so on
// stderr, since the run then falls back to the CPU where the user may have expected the GPU.
bool auto_device_is_cuda(const std::string& setting);

// Where this process looks for the plugin.
std::string cuda_backend_path();

// Whether the NVIDIA driver's library (libcuda.so.1) can be loaded: false on machines that
// cannot run CUDA at all, where the plugin is not worth loading.
bool nvidia_driver_present();

}  // namespace autotrain::device
