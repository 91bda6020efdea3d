// safetensors <-> at::Tensor: zero-copy views into a mapped file, and saving tensors.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>

#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/writer.h"

namespace autotrain::safetensors {

// nullopt for the types torch has no scalar type for (F4, F6_*).
std::optional<at::ScalarType> to_scalar_type(Dtype d);
// Throws SafetensorsError for a scalar type safetensors cannot store.
Dtype from_scalar_type(at::ScalarType t);

// A CPU tensor over the bytes of `t` in `file`, sharing the mapping (the tensor keeps it alive).
// The mapping is private: writing to the tensor never changes the file. Bytes that are not
// aligned for their type (possible in unpadded files) are copied instead. Throws
// SafetensorsError for a dtype torch cannot represent.
at::Tensor tensor_view(const SafetensorsFile& file, const TensorInfo& t);

// Saves named tensors (any device; copied to contiguous CPU memory as needed) atomically.
void save_tensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                  const Metadata& metadata = kPytorchMetadata);

}  // namespace autotrain::safetensors
