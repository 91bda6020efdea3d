// `autotrain merge`: a LoRA adapter folded into its base model, written as a plain Hugging Face
// model folder (what PEFT's merge_and_unload() + save_pretrained() give, and what AutoTrain's
// --merge-adapter wrote). No LibTorch in this header: the CLI includes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace autotrain::lora {

struct MergeCommandOptions {
  std::string model;           // base model folder or Hugging Face cache id (16/32-bit weights);
                               // empty: the adapter's base_model_name_or_path
  std::string adapter;         // PEFT LoRA adapter folder
  std::string out;             // output folder: new, or empty
  std::string dtype = "fp16";  // fp16 (AutoTrain's merge), bf16 or fp32
};

struct MergeCommandResult {
  std::string model_dir;              // the resolved base folder
  std::vector<std::string> modules;   // the merged layers
  bool untied_lm_head = false;        // a LoRA on the tied lm_head: written as its own weight
  int64_t parameters = 0;             // elements written
  int64_t bytes = 0;                  // bytes of weights written
};

// Throws std::invalid_argument for mistakes on the command line, all found before the base is
// loaded: a bad --dtype, an --out that is a file or a non-empty folder, a --model that names
// nothing or is quantized, an --adapter that is no PEFT LoRA folder or does not fit the base.
// std::runtime_error (ModelError, ...) for failures while loading, merging or writing.
MergeCommandResult run_merge_command(const MergeCommandOptions& options);

}  // namespace autotrain::lora
