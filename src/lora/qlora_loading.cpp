#include "autotrain/lora/qlora_loading.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "autotrain/io/json_text.h"
#include "autotrain/lora/lora.h"
#include "autotrain/model/loader.h"
#include "autotrain/quant/bnb_checkpoint.h"
#include "autotrain/quant/linear4bit.h"

namespace autotrain::lora {

namespace {

// quantization_config.bnb_4bit_use_double_quant of a bitsandbytes 4-bit folder.
bool stored_double_quant(const std::filesystem::path& dir) {
  try {
    std::ifstream in(dir / "config.json", std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    const auto cfg = io::parse_json_text(text.str());
    return cfg.at("quantization_config").value("bnb_4bit_use_double_quant", false);
  } catch (const std::exception&) {
    return false;  // the loader reports a broken config.json
  }
}

}  // namespace

namespace {

// The loader both hooks hold: a bitsandbytes 4-bit folder as it is, else the base quantized on
// load or in full precision, then the adapter. `usage_error` turns a wrong --adapter into the
// command's usage error.
template <class UsageError>
std::function<std::unique_ptr<model::FalconForCausalLM>(const std::filesystem::path&, const model::LoadOptions&)>
qlora_loader(const std::string& adapter, bool load_in_4bit, bool double_quant) {
  return [adapter, load_in_4bit, double_quant](const std::filesystem::path& dir, const model::LoadOptions& load) {
    std::unique_ptr<model::FalconForCausalLM> m;
    if (quant::is_bnb_4bit_checkpoint(dir)) {
      // The folder's own quantization is used as it is; say so when it is not what was asked.
      if (double_quant && !stored_double_quant(dir))
        fmt::print(stderr, "warning: {} is already 4-bit, without double quantization: --double-quant is ignored (the "
                   "stored weights are used as they are)\n", dir.string());
      m = quant::load_bnb_4bit(dir, load);
    }
    else if (load_in_4bit)
      m = quant::load_falcon_nf4(dir, load, quant::kNf4DefaultBlocksize, double_quant);
    else
      m = model::load_falcon(dir, load);
    if (!adapter.empty()) {
      try {
        load_adapter(*m, adapter);
      } catch (const AdapterError& e) {
        throw UsageError(e.what());  // a wrong --adapter is a command-line mistake
      }
    }
    return m;
  };
}

}  // namespace

void use_qlora_loading(model::EvalOptions& options) {
  options.load_model =
      qlora_loader<model::EvalUsageError>(options.adapter, options.load_in_4bit, options.double_quant);
}

void use_qlora_loading(model::GenerateOptions& options) {
  options.load_model =
      qlora_loader<model::GenerateUsageError>(options.adapter, options.load_in_4bit, options.double_quant);
}

}  // namespace autotrain::lora
