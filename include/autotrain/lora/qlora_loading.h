// Loading for the QLoRA path: a base model in full precision, quantized to NF4 while loading
// (--load-in-4bit / USE_INT4), or a pre-quantized bitsandbytes folder, with an optional PEFT
// adapter on top. No LibTorch in this header: the CLI includes it.
#pragma once

#include "autotrain/model/eval.h"
#include "autotrain/model/generate.h"

namespace autotrain::lora {

// Sets options.load_model so that run_eval honours options.adapter and options.load_in_4bit,
// and loads pre-quantized bitsandbytes checkpoints as they are.
void use_qlora_loading(model::EvalOptions& options);
// The same for `generate` and `chat`.
void use_qlora_loading(model::GenerateOptions& options);

}  // namespace autotrain::lora
