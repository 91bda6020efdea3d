// The element types a safetensors file can declare (spec §6), with their sizes in bits.
// No LibTorch here: the mapping to at::ScalarType lives in autotrain/safetensors/torch.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace autotrain::safetensors {

// Declared in the order of the reference implementation's enum: the writer lays tensors out by
// this order, descending, so that the most-aligned types come first (spec §6).
enum class Dtype : uint8_t {
  BOOL,
  F4,
  F6_E2M3,
  F6_E3M2,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  F8_E4M3FNUZ,
  F8_E5M2FNUZ,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  C64,
  F64,
  I64,
  U64,
};

// "BF16" -> Dtype::BF16; nullopt for anything else (the names are case-sensitive).
std::optional<Dtype> parse_dtype(std::string_view name);
std::string_view dtype_name(Dtype d);
// Bits per element: 4 and 6 for the sub-byte float types, a multiple of 8 otherwise.
unsigned dtype_bits(Dtype d);
// A comma-separated list of all names, for error messages.
std::string_view dtype_names();

}  // namespace autotrain::safetensors
