// Loads libautotrain_cuda.so on demand (see include/autotrain/device/cuda_backend.h).
#include "autotrain/device/cuda_backend.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <fmt/format.h>

namespace autotrain::device {

namespace {

constexpr const char* kPluginFile = "libautotrain_cuda.so";

struct LoaderState {
  std::mutex mutex;
  const CudaBackendApi* api = nullptr;
  std::string status;
  bool tried_with_driver_check = false;
  bool tried_without_driver_check = false;
};

LoaderState& state() {
  static LoaderState s;
  return s;
}

std::string executable_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

const CudaBackendApi* load_plugin(std::string& status) {
  const std::string path = cuda_backend_path();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    if (const char* env = std::getenv("AUTOTRAIN_CUDA_BACKEND"); env && *env) {
      status = fmt::format("AUTOTRAIN_CUDA_BACKEND names {}, which is not a file; point it at the "
                           "libautotrain_cuda.so of this build, or unset it to use the one beside the binary",
                           path);
      return nullptr;
    }
    status = fmt::format("the CUDA backend {} is missing (this build has no CUDA path, or the file is neither beside "
                         "the autotrain binary nor in ../lib/autotrain/ from it; AUTOTRAIN_CUDA_BACKEND can name it)",
                         path);
    return nullptr;
  }
  // RTLD_GLOBAL, as if linked: LibTorch's CUDA libraries register their kernels and hooks into
  // LibTorch's registries when they load. The plugin is never unloaded.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!handle) {
    const char* err = dlerror();
    status = fmt::format("cannot load the CUDA backend {}: {}", path, err ? err : "unknown error");
    return nullptr;
  }
  using EntryPoint = const CudaBackendApi* (*)();
  auto entry = reinterpret_cast<EntryPoint>(dlsym(handle, kCudaBackendEntryPoint));
  if (!entry) {
    const char* err = dlerror();
    status = fmt::format("{} is not an autotrain CUDA backend ({}); rebuild it with this autotrain binary", path,
                         err ? err : "no entry point");
    return nullptr;
  }
  const CudaBackendApi* api = entry();
  if (!api || api->abi_version != kCudaBackendAbiVersion || api->struct_size != sizeof(CudaBackendApi)) {
    status = fmt::format("the CUDA backend {} does not match this autotrain binary (ABI version {} with {} bytes of "
                         "table, expected {} with {}); rebuild both from the same checkout",
                         path, api ? api->abi_version : 0, api ? api->struct_size : 0, kCudaBackendAbiVersion,
                         sizeof(CudaBackendApi));
    return nullptr;
  }
  // LibTorch settles on its CUDA hooks at its first CUDA query and never asks again: if
  // anything asked before this load, CUDA stays off in this process whatever we load now.
  if (!at::detail::getCUDAHooks().hasCUDART()) {
    status = fmt::format("loaded from {}, but LibTorch answered a CUDA query before it was loaded, so CUDA stays "
                         "disabled in this process (a bug in autotrain: please report it with the command line)",
                         path);
    return nullptr;
  }
  status = fmt::format("loaded from {}", path);
  return api;
}

}  // namespace

// The driver's user-space library is present on every machine that can run CUDA and absent
// elsewhere; probing it costs a few MB, against ~400 MB for LibTorch's CUDA libraries.
// The answer is kept (and the library stays loaded: the CUDA runtime would load it anyway).
bool nvidia_driver_present() {
  static const bool present = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL) != nullptr;
  return present;
}

std::string cuda_backend_path() {
  // Made absolute: dlopen would search the library path for a bare file name.
  if (const char* env = std::getenv("AUTOTRAIN_CUDA_BACKEND"); env && *env) {
    std::error_code ec;
    auto path = std::filesystem::absolute(env, ec);
    return ec ? std::string(env) : path.string();
  }
  // Beside the binary (a build folder), else where `cmake --install` puts it.
  const std::filesystem::path exe_dir = executable_dir();
  const std::filesystem::path beside = exe_dir / kPluginFile;
  const std::filesystem::path installed = exe_dir.parent_path() / "lib" / "autotrain" / kPluginFile;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(beside, ec) && std::filesystem::is_regular_file(installed, ec))
    return installed.string();
  return beside.string();
}

const CudaBackendApi* cuda_backend(bool even_without_driver) {
  LoaderState& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.api) return s.api;
  // A failed load is not retried (it would fail the same way), except that a caller allowing a
  // machine without a driver gets its own attempt after a driver-checked one was declined.
  if (even_without_driver ? s.tried_without_driver_check : (s.tried_with_driver_check || s.tried_without_driver_check))
    return nullptr;
  (even_without_driver ? s.tried_without_driver_check : s.tried_with_driver_check) = true;
  if (!even_without_driver && !nvidia_driver_present()) {
    s.status = "not loaded: no NVIDIA driver on this machine (libcuda.so.1 not found)";
    return nullptr;
  }
  s.api = load_plugin(s.status);
  return s.api;
}

std::string cuda_backend_status() {
  LoaderState& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.status;
}

bool cuda_available() { return cuda_backend() != nullptr && at::hasCUDA(); }

bool auto_device_is_cuda(const std::string& setting) {
  if (cuda_available()) return true;
  if (nvidia_driver_present())
    fmt::print(stderr, "warning: {}: this machine has an NVIDIA driver but CUDA is not usable (CUDA backend: {}); "
                       "running on the CPU\n",
               setting, cuda_backend_status());
  return false;
}

}  // namespace autotrain::device
