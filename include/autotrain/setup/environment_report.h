// What `autotrain setup` reports about the machine: our version, the LibTorch build, CUDA
// devices, CPU threads and free disk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace autotrain::setup {

struct GpuInfo {
  int index = 0;
  std::string name;
  int capability_major = 0;
  int capability_minor = 0;
  uint64_t total_memory_bytes = 0;
  bool bf16 = false;  // native bf16 (compute capability 8.0 and newer)
};

struct EnvironmentReport {
  std::string autotrain_version;
  std::string libtorch_version;
  bool libtorch_cuda_build = false;  // LibTorch was built with CUDA
  std::string cuda_build_version;    // CUDA runtime LibTorch was built with, "" if none
  std::string cudnn_build_version;   // "" if none
  bool cuda_available = false;       // a usable device and driver
  std::string cuda_backend;          // where the CUDA backend plugin was loaded from, or why not
  bool cuda_backend_loaded = false;  // without it LibTorch's CUDA build cannot be asked about
  std::vector<GpuInfo> gpus;
  int cpu_threads = 0;    // hardware threads
  int torch_threads = 0;  // intra-op threads LibTorch will use
  std::filesystem::path disk_path;
  uint64_t free_disk_bytes = 0;

  nlohmann::json to_json() const;
  std::string to_text() const;
};

// `disk_path`: where free space is measured (the project folder, or its nearest existing parent).
EnvironmentReport collect_environment_report(const std::filesystem::path& disk_path);

}  // namespace autotrain::setup
