// `autotrain quantize`: write a bitsandbytes-compatible 4-bit checkpoint. No LibTorch in this
// header: the CLI includes it.
#pragma once

#include <cstdint>
#include <string>

namespace autotrain::quant {

struct QuantizeCommandOptions {
  std::string model;          // folder or Hugging Face cache id
  std::string out;            // output folder
  bool double_quant = false;  // bnb_4bit_use_double_quant
  int64_t blocksize = 64;
  std::string dtype = "auto";  // dtype of the unquantized tensors: auto (config's torch_dtype) | fp16 | bf16 | fp32
};

struct QuantizeCommandResult {
  int64_t layers = 0;
  int64_t dense_bytes = 0;
  int64_t nf4_bytes = 0;
  std::string model_dir;
};

// Throws std::invalid_argument for bad options, checked before anything is quantized: an --out
// that is a file or a non-empty folder, a --model that names nothing or is already quantized
// (bitsandbytes 4- or 8-bit, or any quantization_config); std::runtime_error / ModelError for
// failures.
QuantizeCommandResult run_quantize_command(const QuantizeCommandOptions& options);

}  // namespace autotrain::quant
