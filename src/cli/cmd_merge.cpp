// autotrain merge [--model M] --adapter A --out DIR [--dtype fp16|bf16|fp32] [--json]
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autotrain/lora/merge_command.h"
#include "common.h"

namespace autotrain::cli {

Subcommand add_merge_command(CLI::App& app, GlobalOptions& /*g*/) {
  CLI::App* sub = app.add_subcommand("merge", "Merge a LoRA adapter into its base model (a plain 16-bit model folder)");
  auto o = std::make_shared<lora::MergeCommandOptions>();
  auto json = std::make_shared<bool>(false);
  sub->add_option("--model", o->model,
                  "Base model folder or Hugging Face cache id (16/32-bit weights); default: the adapter's "
                  "base_model_name_or_path");
  sub->add_option("--adapter", o->adapter, "PEFT LoRA adapter folder (e.g. a project folder after train)")->required();
  sub->add_option("--out", o->out, "Output folder (must not exist, or be empty)")->required();
  sub->add_option("--dtype", o->dtype, "Dtype of the merged weights: fp16 (default, as AutoTrain), bf16, fp32");
  sub->add_flag("--json", *json, "Print the summary as JSON");
  return {sub, [o, json] {
            lora::MergeCommandResult r;
            try {
              r = lora::run_merge_command(*o);
            } catch (const std::invalid_argument& e) {
              fmt::print(stderr, "error: {}\n", e.what());
              return static_cast<int>(kExitUsage);
            }
            if (r.untied_lm_head)
              fmt::print(stderr, "note: the adapter has a LoRA on lm_head, whose weight the base shares with the input "
                         "embedding; the merged head is written as its own lm_head.weight (tie_word_embeddings "
                         "false) so that the embedding stays the base's\n");
            if (*json) {
              nlohmann::json j = {{"model_dir", r.model_dir}, {"adapter", o->adapter}, {"out", o->out},
                                  {"dtype", o->dtype}, {"merged_layers", r.modules.size()},
                                  {"parameters", r.parameters}, {"bytes", r.bytes},
                                  {"untied_lm_head", r.untied_lm_head}};
              fmt::print("{}\n", j.dump());
            } else {
              fmt::print("merged {} LoRA layer{} of {} into {} ({} parameters, {:.1f} MiB, {}); wrote {}\n",
                         r.modules.size(), r.modules.size() == 1 ? "" : "s", o->adapter, r.model_dir, r.parameters,
                         r.bytes / 1048576.0, o->dtype, o->out);
            }
            return static_cast<int>(kExitOk);
          }};
}

}  // namespace autotrain::cli
