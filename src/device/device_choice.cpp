#include "autotrain/device/device_choice.h"

#include <cstdint>
#include <optional>

#include <ATen/detail/CUDAHooksInterface.h>
#include <fmt/format.h>

#include "autotrain/device/cuda_backend.h"

namespace autotrain::device {

c10::Device choose_device(const std::string& spec, const std::string& setting) {
  // As the user wrote it: "DEVICE=cuda:1" for a config key, "--device cuda:1" for an option.
  auto as_written = [&](const std::string& value) {
    return setting.rfind("--", 0) == 0 ? setting + " " + value : setting + "=" + value;
  };
  // Asking loads the CUDA backend when the machine has an NVIDIA driver; cpu never does.
  if (spec == "auto" || spec.empty())
    return auto_device_is_cuda(as_written("auto")) ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (spec == "cpu") return c10::kCPU;
  const std::string named = as_written(spec);
  std::optional<c10::Device> d;
  if (spec.rfind("cuda", 0) == 0) {
    try {
      d = c10::Device(spec);
    } catch (const std::exception&) {
    }
  }
  if (!d || !d->is_cuda()) throw DeviceChoiceError(fmt::format("{}: use auto, cpu, cuda or cuda:N", named));
  if (!cuda_available())
    throw std::runtime_error(fmt::format(
        "{} but no CUDA device is available (CUDA backend: {}; or no GPU visible, or CUDA_VISIBLE_DEVICES "
        "empty); run `autotrain setup` to see what LibTorch finds, or use cpu",
        named, cuda_backend_status()));
  const int64_t count = at::detail::getCUDAHooks().deviceCount();
  if (d->has_index() && d->index() >= count)
    throw DeviceChoiceError(fmt::format("{}: this machine shows {} CUDA device{} (cuda:0{}); check "
                                        "CUDA_VISIBLE_DEVICES, or pick one of them",
                                        named, count, count == 1 ? "" : "s",
                                        count > 1 ? fmt::format(" to cuda:{}", count - 1) : std::string()));
  return d->has_index() ? *d : c10::Device(c10::kCUDA, 0);
}

}  // namespace autotrain::device
