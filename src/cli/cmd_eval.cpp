// autotrain eval --model M --data FILE [...]: loss and perplexity of a model on a dataset.
// Argument parsing only; the work is in autotrain/model/eval.h (which keeps LibTorch out of
// this file, see src/CMakeLists.txt on {fmt} and spdlog).
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "autotrain/lora/qlora_loading.h"
#include "autotrain/model/eval.h"
#include "common.h"

namespace autotrain::cli {

Subcommand add_eval_command(CLI::App& app, GlobalOptions& /*g*/) {
  CLI::App* sub = app.add_subcommand("eval", "Loss and perplexity of a model on a dataset");
  auto o = std::make_shared<model::EvalOptions>();
  auto json = std::make_shared<bool>(false);
  auto block = std::make_shared<int64_t>(0);
  sub->add_option("--model", o->model, "Model folder, or org/name in the Hugging Face cache")
      ->required()
      ->check(not_empty("--model runs/tiny-falcon"));
  sub->add_option("--adapter", o->adapter, "PEFT LoRA adapter folder to apply to the model")
      ->check(not_empty("--adapter runs/tiny-tiny"));
  sub->add_flag("--load-in-4bit", o->load_in_4bit, "Quantize the base model to NF4 while loading (QLoRA)");
  sub->add_flag("--double-quant", o->double_quant,
                "With --load-in-4bit: double quantization, as an adapter trained with USE_DOUBLE_QUANT=True saw it");
  sub->add_option("--data", o->data, "Rows: .jsonl/.json/.csv (also .gz/.zst/.bz2/.xz) with {\"input_ids\": [...]} or a text column; .txt (a "
                  "row per line); the text column of .parquet/.arrow/.feather")->required();
  sub->add_option("--text-column", o->text_column, "Column holding the text (default: text)");
  sub->add_option("--block-size", *block, "Tokens per block (default: 1024, capped at the model's maximum)")
      ->transform(positive_integer("--block-size 1024"));
  sub->add_option("--dtype", o->dtype, "Weights and activations: fp32 (default), fp16 or bf16")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  // Checked by device::choose_device, as train's DEVICE is: the same words, cuda:N included.
  sub->add_option("--device", o->device, "auto (CUDA when available, default), cpu, cuda or cuda:N")
      ->check(not_empty("--device cpu"));
  sub->add_flag("--json", *json, "Print {\"loss\", \"perplexity\", \"tokens\"}");
  return {sub, [o, json, block] {
            if (*block > 0) o->block_size = *block;
            lora::use_qlora_loading(*o);
            model::EvalResult r;
            try {
              r = model::run_eval(*o);
            } catch (const model::EvalUsageError& e) {
              fmt::print(stderr, "error: {}\n", e.what());
              return static_cast<int>(kExitUsage);
            }
            for (const auto& w : r.warnings) spdlog::warn("{}", w);
            if (*json) {
              nlohmann::ordered_json j;
              j["loss"] = r.loss;
              j["perplexity"] = r.perplexity;
              j["tokens"] = r.tokens;
              fmt::print("{}\n", j.dump());
            } else {
              fmt::print("loss {:.6f}  perplexity {:.4f}  over {} tokens ({} blocks of {}) on {}\n", r.loss,
                         r.perplexity, r.tokens, r.blocks, r.block_size, r.device);
            }
            return static_cast<int>(kExitOk);
          }};
}

}  // namespace autotrain::cli
