// autotrain quantize --model M --out DIR [--double-quant] [--blocksize N] [--dtype D] [--json]
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autotrain/quant/quantize_command.h"
#include "common.h"

namespace autotrain::cli {

Subcommand add_quantize_command(CLI::App& app, GlobalOptions& /*g*/) {
  CLI::App* sub = app.add_subcommand("quantize", "Write a bitsandbytes-compatible 4-bit (NF4) checkpoint");
  auto o = std::make_shared<quant::QuantizeCommandOptions>();
  auto json = std::make_shared<bool>(false);
  sub->add_option("--model", o->model, "Model folder or Hugging Face cache id")->required();
  sub->add_option("--out", o->out, "Output folder (must not exist, or be empty)")->required();
  sub->add_flag("--double-quant", o->double_quant, "Quantize the absmax statistics too (bnb_4bit_use_double_quant)");
  sub->add_option("--blocksize", o->blocksize, "Elements per quantization block: 64 (default), 128 or 256");
  sub->add_option("--dtype", o->dtype, "Dtype of the tensors left unquantized: auto (config's), fp16, bf16, fp32");
  sub->add_flag("--json", *json, "Print the summary as JSON");
  return {sub, [o, json] {
            quant::QuantizeCommandResult r;
            try {
              r = quant::run_quantize_command(*o);
            } catch (const std::invalid_argument& e) {
              fmt::print(stderr, "error: {}\n", e.what());
              return static_cast<int>(kExitUsage);
            }
            if (*json) {
              nlohmann::json j = {{"model_dir", r.model_dir}, {"out", o->out}, {"layers", r.layers},
                                  {"dense_bytes", r.dense_bytes}, {"nf4_bytes", r.nf4_bytes}};
              fmt::print("{}\n", j.dump());
            } else {
              fmt::print("quantized {} linear layers of {}: {:.1f} MiB -> {:.1f} MiB; wrote {}\n", r.layers, r.model_dir,
                         r.dense_bytes / 1048576.0, r.nf4_bytes / 1048576.0, o->out);
            }
            return static_cast<int>(kExitOk);
          }};
}

}  // namespace autotrain::cli
