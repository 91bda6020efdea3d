#include "autotrain/lora/qlora_loading.h"

#include "autotrain/lora/lora.h"
#include "autotrain/model/loader.h"
#include "autotrain/quant/bnb_checkpoint.h"
#include "autotrain/quant/linear4bit.h"

namespace autotrain::lora {

void use_qlora_loading(model::EvalOptions& options) {
  const std::string adapter = options.adapter;
  const bool load_in_4bit = options.load_in_4bit;
  const bool double_quant = options.double_quant;
  options.load_model = [adapter, load_in_4bit, double_quant](const std::filesystem::path& dir,
                                                             const model::LoadOptions& load) {
    std::unique_ptr<model::FalconForCausalLM> m;
    if (quant::is_bnb_4bit_checkpoint(dir))
      m = quant::load_bnb_4bit(dir, load);
    else if (load_in_4bit)
      m = quant::load_falcon_nf4(dir, load, quant::kNf4DefaultBlocksize, double_quant);
    else
      m = model::load_falcon(dir, load);
    if (!adapter.empty()) {
      try {
        load_adapter(*m, adapter);
      } catch (const AdapterError& e) {
        throw model::EvalUsageError(e.what());  // a wrong --adapter is a command-line mistake
      }
    }
    return m;
  };
}

}  // namespace autotrain::lora
