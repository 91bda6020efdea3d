#include "autotrain/safetensors/torch.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

namespace autotrain::safetensors {

namespace {
struct Pair {
  Dtype d;
  at::ScalarType t;
};
constexpr Pair kPairs[] = {
    {Dtype::BOOL, at::kBool},
    {Dtype::U8, at::kByte},
    {Dtype::I8, at::kChar},
    {Dtype::F8_E5M2, at::kFloat8_e5m2},
    {Dtype::F8_E4M3, at::kFloat8_e4m3fn},
    {Dtype::F8_E8M0, at::kFloat8_e8m0fnu},
    {Dtype::F8_E4M3FNUZ, at::kFloat8_e4m3fnuz},
    {Dtype::F8_E5M2FNUZ, at::kFloat8_e5m2fnuz},
    {Dtype::I16, at::kShort},
    {Dtype::U16, at::kUInt16},
    {Dtype::F16, at::kHalf},
    {Dtype::BF16, at::kBFloat16},
    {Dtype::I32, at::kInt},
    {Dtype::U32, at::kUInt32},
    {Dtype::F32, at::kFloat},
    {Dtype::C64, at::kComplexFloat},
    {Dtype::F64, at::kDouble},
    {Dtype::I64, at::kLong},
    {Dtype::U64, at::kUInt64},
};
}  // namespace

std::optional<at::ScalarType> to_scalar_type(Dtype d) {
  for (const auto& p : kPairs)
    if (p.d == d) return p.t;
  return std::nullopt;
}

Dtype from_scalar_type(at::ScalarType t) {
  for (const auto& p : kPairs)
    if (p.t == t) return p.d;
  throw SafetensorsError(fmt::format("torch dtype {} cannot be stored in safetensors", c10::toString(t)));
}

at::Tensor tensor_view(const SafetensorsFile& file, const TensorInfo& t) {
  auto st = to_scalar_type(t.dtype);
  if (!st)
    throw SafetensorsError(fmt::format("{}: tensor '{}' has dtype {}, which LibTorch cannot represent",
                                       file.path().string(), t.name, dtype_name(t.dtype)));
  auto bytes = file.data(t);
  auto opts = at::TensorOptions().dtype(*st).device(at::kCPU);
  size_t item = c10::elementSize(*st);
  if (reinterpret_cast<uintptr_t>(bytes.data()) % item != 0) {
    at::Tensor out = at::empty(t.shape, opts);
    std::memcpy(out.data_ptr(), bytes.data(), bytes.size());
    return out;
  }
  // The deleter owns a reference to the mapping: the view outlives the SafetensorsFile.
  auto keep = new std::shared_ptr<const MappedFile>(file.mapping());
  return at::from_blob(
      const_cast<std::byte*>(bytes.data()), t.shape, [keep](void*) { delete keep; }, opts);
}

void save_tensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                  const Metadata& metadata) {
  std::vector<at::Tensor> host;  // keeps the CPU copies alive while writing
  std::vector<TensorData> data;
  host.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    if (!t.defined()) throw SafetensorsError(fmt::format("{}: tensor '{}' is undefined", path.string(), name));
    host.push_back(t.detach().to(at::kCPU).contiguous());
    const at::Tensor& h = host.back();
    data.push_back({name, from_scalar_type(h.scalar_type()), h.sizes().vec(),
                    {static_cast<const std::byte*>(h.data_ptr()), h.nbytes()}});
  }
  write_file(path, data, metadata);
}

}  // namespace autotrain::safetensors
