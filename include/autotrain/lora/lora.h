// LoRA adapters with PEFT semantics (falcon-qlora-spec.md §4): a wrapper around any linear layer
// (dense or 4-bit), injection by PEFT's target-module rules, the trainable-parameter line PEFT
// prints, merging, and adapter files in PEFT's format (adapter_model.safetensors +
// adapter_config.json) both ways.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "autotrain/model/falcon.h"
#include "autotrain/model/linear.h"

namespace autotrain::lora {

class AdapterError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LoraOptions {
  int64_t r = 16;
  double alpha = 32;
  double dropout = 0.0;
  bool rslora = false;  // scaling alpha / sqrt(r) instead of alpha / r
  // "" = PEFT's default for Falcon (query_key_value), "all-linear" = every linear but lm_head
  // (surrounding spaces and case ignored, as AutoTrain does), or a comma-separated list of names
  // matched as PEFT matches them (exact or "."-suffix).
  std::string target_modules;

  double scaling() const;
};

// y = base(x) + B(A(dropout(x))) * scaling, with A [r, in] and B [out, r] in float32.
class LoraLinear final : public model::Linear {
 public:
  LoraLinear(model::LinearPtr base, int64_t r, double scaling, double dropout);

  at::Tensor forward(const at::Tensor& x) const override;
  int64_t in_features() const override { return base_->in_features(); }
  int64_t out_features() const override { return base_->out_features(); }
  // The base layer's tensors, then "lora_A.weight" and "lora_B.weight".
  std::vector<std::pair<std::string, at::Tensor*>> named_tensors() override;

  model::Linear& base() { return *base_; }
  // Dropout is active only while training.
  void set_training(bool training) { training_ = training; }
  // ΔW = (B @ A) * scaling in float32, [out, in].
  at::Tensor delta_weight() const;
  // Folds ΔW into a dense base weight (W' = W + ΔW, computed in float32 and rounded once to W's
  // dtype) so the adapter costs nothing at inference; unmerge subtracts it again. While merged,
  // forward skips the adapter branch. A 4-bit base cannot be merged in place (it would be
  // re-quantized); merge() throws AdapterError then.
  void merge();
  void unmerge();
  bool merged() const { return merged_; }
  // Hands the base layer over (merge_and_unload puts it back in the model's slot); this wrapper
  // must not be used afterwards.
  model::LinearPtr release_base() { return std::move(base_); }

  at::Tensor lora_A;  // [r, in], float32
  at::Tensor lora_B;  // [out, r], float32

 private:
  model::LinearPtr base_;
  double scaling_;
  double dropout_;
  bool training_ = false;
  bool merged_ = false;
};

// The module names `spec` selects among the model's linear layers (lm_head is never a default
// target). A name that matches nothing, or a list with no name (","), is a config::ConfigError
// about TARGET_MODULES listing the layers that exist (the CLI exits 2 on it).
std::vector<std::string> resolve_target_modules(model::FalconForCausalLM& model, const std::string& spec);

struct InjectedLora {
  std::vector<std::string> modules;  // full names, in model order
  std::vector<LoraLinear*> layers;
  std::vector<at::Tensor> parameters() const;  // lora_A, lora_B of every layer (requires_grad)
};

// Wraps the selected layers with fresh adapters: A ~ kaiming_uniform(a=√5) = U(±1/√in), B = 0,
// drawn on the CPU from a generator seeded with `seed`, then moved to the base layer's device.
InjectedLora inject_lora(model::FalconForCausalLM& model, const LoraOptions& options, uint64_t seed);

// PEFT's line: "trainable params: 2,359,296 || all params: 6,924,080,000 || trainable%: 0.0341"
std::string trainable_parameters_line(model::FalconForCausalLM& model);
// As PEFT counts: every parameter once (a tied lm_head's weight is the embedding), LoRA on a
// tied lm_head included, packed 4-bit bytes as two parameters each.
int64_t count_parameters(model::FalconForCausalLM& model, bool trainable_only);

// Writes <dir>/adapter_model.safetensors (keys base_model.model.<module>.lora_{A,B}.weight,
// metadata {"format":"pt"}) and <dir>/adapter_config.json (peft 0.21.2's fields and defaults but
// peft_version, sorted, indent 2; target_modules as PEFT saves options.target_modules).
void save_adapter(const InjectedLora& lora, const LoraOptions& options, const std::string& base_model_name,
                  const std::filesystem::path& dir);

// Loads a PEFT LoRA adapter folder onto `model` (which must not have adapters yet): reads the
// config (unknown keys ignored), injects the layers it names and fills A and B. The result's
// options.target_modules lists the loaded modules by full name. Refuses `.bin`
// adapters, unsupported options (DoRA, rank/alpha patterns, biases) and adapters whose modules or
// shapes do not fit the model, saying which. `warn` false: no warnings on stderr (a first,
// structural check of the same adapter).
struct LoadedAdapter {
  LoraOptions options;
  InjectedLora lora;
  std::string base_model_name;
};
LoadedAdapter load_adapter(model::FalconForCausalLM& model, const std::filesystem::path& dir, bool warn = true);

// PEFT's merge_and_unload(): folds every adapter into its dense base layer (W + ΔW, rounded once
// to W's dtype, as PEFT's default unsafe merge) and puts the base layer back into the model, which
// is then a plain model again. A LoRA on an lm_head tied to the input embedding unties it: the
// merged head becomes a weight of its own and the embedding stays the base's (PEFT would change
// the embedding too, so the merged model would no longer compute what base + adapter did).
// Throws AdapterError when a base layer is 4-bit, or when a merged weight is not finite (naming
// the layer and dtype).
struct MergeResult {
  std::vector<std::string> modules;  // the merged layers, in model order
  bool untied_lm_head = false;
};
MergeResult merge_and_unload(model::FalconForCausalLM& model);

}  // namespace autotrain::lora
