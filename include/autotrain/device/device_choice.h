// Turning a device setting (DEVICE=..., --device ...) into a LibTorch device, the same way for
// every command: auto | cpu | cuda | cuda:N.
#pragma once

#include <stdexcept>
#include <string>

#include <c10/core/Device.h>

namespace autotrain::device {

// A setting that names no device, or a GPU index the machine does not show: a usage error.
class DeviceChoiceError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// `setting` names where the value came from in messages, e.g. "DEVICE" or "--device".
// auto: GPU 0 when CUDA is usable, else the CPU (saying why on stderr when a driver exists);
// cpu never loads the CUDA backend. cuda / cuda:N on a machine where CUDA is not usable throws
// std::runtime_error (the environment, not the setting, is what needs fixing).
c10::Device choose_device(const std::string& spec, const std::string& setting);

}  // namespace autotrain::device
