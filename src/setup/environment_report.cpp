#include "autotrain/setup/environment_report.h"

#include <thread>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/headeronly/version.h>

#include "autotrain/device/cuda_backend.h"

namespace autotrain::setup {

namespace {

// CUDA encodes versions as 1000*major + 10*minor; cuDNN 9 as 10000*major + 100*minor + patch.
std::string cuda_version_string(long v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }
std::string cudnn_version_string(long v) {
  return v >= 10000 ? fmt::format("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100)
                    : fmt::format("{}.{}.{}", v / 1000, (v % 1000) / 100, v % 100);
}

std::string gib(uint64_t bytes) { return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1ull << 30)); }

}  // namespace

EnvironmentReport collect_environment_report(const std::filesystem::path& disk_path) {
  EnvironmentReport r;
  r.autotrain_version = AUTOTRAIN_VERSION;
  r.libtorch_version = fmt::format("{}.{}.{}", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
  // The report loads the CUDA backend even on a machine without a driver: it is what brings
  // LibTorch's CUDA libraries, and so the only way to say how LibTorch was built.
  const device::CudaBackendApi* cuda = device::cuda_backend(/*even_without_driver=*/true);
  r.cuda_backend = device::cuda_backend_status();
  r.cuda_backend_loaded = cuda != nullptr;
  const auto& hooks = at::detail::getCUDAHooks();
  // The hooks answer only when libtorch_cuda is loaded; otherwise they throw.
  try {
    r.libtorch_cuda_build = hooks.hasCUDART();
    if (r.libtorch_cuda_build) r.cuda_build_version = cuda_version_string(hooks.versionCUDART());
    if (hooks.compiledWithCuDNN()) r.cudnn_build_version = cudnn_version_string(hooks.versionCuDNN());
  } catch (const std::exception&) {
  }
  try {
    r.cuda_available = hooks.hasCUDA() && hooks.getNumGPUs() > 0;
  } catch (const std::exception&) {
    r.cuda_available = false;
  }
  if (r.cuda_available && cuda) {
    int n = hooks.getNumGPUs();
    for (int i = 0; i < n; ++i) {
      device::CudaDeviceInfo p{};
      if (cuda->device_info(i, &p) != 0) continue;
      r.gpus.push_back({i, p.name, p.capability_major, p.capability_minor, p.total_memory_bytes, p.capability_major >= 8});
    }
  }
  r.cpu_threads = static_cast<int>(std::thread::hardware_concurrency());
  r.torch_threads = at::get_num_threads();
  // Measure the nearest existing folder: the project folder may not exist yet.
  std::filesystem::path probe = disk_path.empty() ? std::filesystem::current_path() : std::filesystem::absolute(disk_path);
  while (!probe.empty() && !std::filesystem::exists(probe) && probe != probe.parent_path()) probe = probe.parent_path();
  r.disk_path = probe;
  std::error_code ec;
  auto space = std::filesystem::space(probe, ec);
  if (!ec) r.free_disk_bytes = space.available;
  return r;
}

nlohmann::json EnvironmentReport::to_json() const {
  nlohmann::json gpus_json = nlohmann::json::array();
  for (const auto& g : gpus)
    gpus_json.push_back({{"index", g.index},
                         {"name", g.name},
                         {"compute_capability", fmt::format("{}.{}", g.capability_major, g.capability_minor)},
                         {"memory_bytes", g.total_memory_bytes},
                         {"bf16", g.bf16}});
  return {{"autotrain_version", autotrain_version},
          {"libtorch", {{"version", libtorch_version},
                        // null: unknown, the CUDA backend (which brings libtorch_cuda) did not load
                        {"cuda_build", cuda_backend_loaded ? nlohmann::json(libtorch_cuda_build) : nlohmann::json()},
                        {"cuda_version", cuda_build_version.empty() ? nlohmann::json() : nlohmann::json(cuda_build_version)},
                        {"cudnn_version", cudnn_build_version.empty() ? nlohmann::json() : nlohmann::json(cudnn_build_version)}}},
          {"cuda_available", cuda_available},
          {"cuda_backend", cuda_backend},
          {"gpus", gpus_json},
          {"cpu_threads", cpu_threads},
          {"torch_threads", torch_threads},
          {"disk", {{"path", disk_path.string()}, {"free_bytes", free_disk_bytes}}}};
}

std::string EnvironmentReport::to_text() const {
  std::string out;
  out += fmt::format("autotrain     {}\n", autotrain_version);
  out += fmt::format("LibTorch      {} ({})\n", libtorch_version,
                     libtorch_cuda_build ? fmt::format("CUDA {}{}", cuda_build_version,
                                                       cudnn_build_version.empty() ? "" : ", cuDNN " + cudnn_build_version)
                     : cuda_backend_loaded ? std::string("CPU only")
                                           : std::string("CUDA build unknown: the CUDA backend is not loaded"));
  out += fmt::format("CUDA          {}\n", cuda_available ? fmt::format("available, {} device(s)", gpus.size())
                                                          : std::string("not available (training runs on the CPU)"));
  out += fmt::format("CUDA backend  {}\n", cuda_backend);
  for (const auto& g : gpus)
    out += fmt::format("  GPU {}       {}, compute {}.{}, {}, bf16 {}\n", g.index, g.name, g.capability_major,
                       g.capability_minor, gib(g.total_memory_bytes), g.bf16 ? "yes" : "no");
  out += fmt::format("CPU threads   {} (LibTorch uses {})\n", cpu_threads, torch_threads);
  out += fmt::format("Free disk     {} at {}\n", gib(free_disk_bytes), disk_path.string());
  return out;
}

}  // namespace autotrain::setup
