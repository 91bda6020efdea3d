#include "autotrain/model/loader.h"

#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "autotrain/io/atomic_file.h"
#include "autotrain/safetensors/checkpoint.h"
#include "autotrain/safetensors/torch.h"

namespace autotrain::model {

namespace {

std::string shape_str(at::IntArrayRef s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

std::string join_names(const std::vector<std::string>& names, size_t max = 20) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < max; ++i) out += "\n  " + names[i];
  if (names.size() > max) out += fmt::format("\n  ... and {} more", names.size() - max);
  return out;
}

// Buffers some exporters store but that are computed, not learned: accepted and ignored.
bool is_ignorable_buffer(const std::string& name) {
  return name.ends_with(".rotary_emb.inv_freq") || name.ends_with(".attn.masked_bias") ||
         name.ends_with(".attn.bias");
}

}  // namespace

HeadTying checkpoint_head_tying(const FalconConfig& cfg, const safetensors::CheckpointFiles& files) {
  if (!cfg.tie_word_embeddings) return HeadTying::kUntied;
  constexpr const char* kEmbedding = "transformer.word_embeddings.weight";
  constexpr const char* kHead = "lm_head.weight";
  std::optional<std::pair<std::filesystem::path, safetensors::TensorInfo>> embedding, head;
  for (const auto& path : files.shards) {
    auto shard = safetensors::SafetensorsFile::open(path);
    for (const auto& info : shard.header().tensors) {
      if (info.name == kEmbedding) embedding.emplace(path, info);
      if (info.name == kHead) head.emplace(path, info);
    }
  }
  if (!head) return HeadTying::kTied;
  if (!embedding) return HeadTying::kEmbeddingFromHead;
  if (head->second.dtype != embedding->second.dtype || head->second.shape != embedding->second.shape)
    return HeadTying::kUntied;
  // Byte-equal in the stored dtype: what transformers' check sees after loading both the same way.
  auto a = safetensors::SafetensorsFile::open(embedding->first);
  auto b = safetensors::SafetensorsFile::open(head->first);
  auto x = a.data(embedding->second), y = b.data(head->second);
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size()) == 0 ? HeadTying::kTied
                                                                                 : HeadTying::kUntied;
}

std::unique_ptr<FalconForCausalLM> load_falcon(const std::filesystem::path& dir, const LoadOptions& options) {
  FalconConfig cfg = FalconConfig::load(dir / "config.json");
  auto files = safetensors::find_checkpoint(dir);
  const HeadTying tying = checkpoint_head_tying(cfg, files);
  if (tying == HeadTying::kUntied && cfg.tie_word_embeddings) {
    fmt::print(stderr,
               "warning: {}: config.json ties lm_head to the word embeddings, but the checkpoint stores an lm_head.weight "
               "with other values; using it untied, as transformers does (set \"tie_word_embeddings\": false in "
               "config.json to silence this)\n",
               dir.string());
    cfg.tie_word_embeddings = false;
  }
  // The number of layers first: config.json's count sizes even the list of expected names.
  {
    int64_t layers_in_checkpoint = 0;
    for (const auto& shard_path : files.shards) {
      auto shard = safetensors::SafetensorsFile::open(shard_path);
      for (const auto& info : shard.header().tensors) {
        constexpr std::string_view kLayerPrefix = "transformer.h.";
        if (info.name.rfind(kLayerPrefix, 0) != 0) continue;
        const std::string rest = info.name.substr(kLayerPrefix.size());
        const size_t digits = rest.find_first_not_of("0123456789");
        if (digits == 0 || digits == std::string::npos || digits > 9) continue;
        layers_in_checkpoint = std::max<int64_t>(layers_in_checkpoint, std::stoll(rest.substr(0, digits)) + 1);
      }
    }
    if (cfg.num_hidden_layers != layers_in_checkpoint)
      throw ModelError(fmt::format("{}: config.json says num_hidden_layers {}, but the checkpoint holds {} decoder "
                                   "layers (transformer.h.N); is config.json the one that belongs to these weights?",
                                   dir.string(), cfg.num_hidden_layers, layers_in_checkpoint));
  }
  std::map<std::string, std::vector<int64_t>> expected;
  for (const auto& spec : falcon_parameter_specs(cfg)) expected[spec.name] = spec.shape;
  // The checkpoint's names and shapes against config.json's, from the headers alone, before the
  // model is allocated: a config.json with num_hidden_layers 1e9 or a huge hidden_size must be
  // refused, not allocated until the machine runs out of memory.
  {
    std::set<std::string> present;
    std::vector<std::string> unexpected, mismatched;
    for (const auto& shard_path : files.shards) {
      auto shard = safetensors::SafetensorsFile::open(shard_path);
      for (const auto& info : shard.header().tensors) {
        std::string name = info.name;
        if (name == "lm_head.weight" && cfg.tie_word_embeddings) {
          if (tying != HeadTying::kEmbeddingFromHead) continue;
          name = "transformer.word_embeddings.weight";
        }
        auto it = expected.find(name);
        if (it == expected.end()) {
          if (!is_ignorable_buffer(info.name))
            unexpected.push_back(fmt::format("{} (in {})", info.name, shard_path.filename().string()));
        } else if (info.shape != it->second) {
          mismatched.push_back(fmt::format("{}: checkpoint {} vs config.json {}", info.name, shape_str(info.shape),
                                           shape_str(it->second)));
        } else if (info.dtype != safetensors::Dtype::F16 && info.dtype != safetensors::Dtype::BF16 &&
                   info.dtype != safetensors::Dtype::F32 && info.dtype != safetensors::Dtype::F64) {
          // An integer (or 8-bit float) weight is a quantized one, which casting would not undo.
          mismatched.push_back(fmt::format("{}: stored as {}, not as a 16/32-bit float (quantized weights are not read)",
                                           info.name, safetensors::dtype_name(info.dtype)));
        }
        present.insert(name);
      }
    }
    std::vector<std::string> missing;
    for (const auto& [name, _] : expected)
      if (!present.count(name)) missing.push_back(name);
    // Quantized weights (GPTQ, AWQ, bitsandbytes 8-bit, ...) are integers plus their own scale
    // tensors: said as such rather than as a config.json that does not belong to them.
    // bitsandbytes 4-bit checkpoints have their own loader (quant/bnb_checkpoint.h), which eval
    // and train use for them. A quantization_config over plain 16/32-bit weights (transformers
    // would quantize them as it loads) is ignored, with a warning.
    const bool clean = unexpected.empty() && missing.empty() && mismatched.empty();
    if (!cfg.quantization.empty() && !clean)
      throw ModelError(fmt::format("{}: config.json's quantization_config says these weights are quantized ({}); only "
                                   "16/32-bit checkpoints and bitsandbytes 4-bit (NF4) ones are read. Use the original "
                                   "model (USE_INT4=True quantizes it to NF4 as it loads)",
                                   dir.string(), cfg.quantization));
    if (!cfg.quantization.empty())
      fmt::print(stderr,
                 "warning: {}: config.json has a quantization_config ({}), but the weights are plain 16/32-bit ones; "
                 "they are loaded as they are (USE_INT4=True quantizes them to NF4)\n",
                 dir.string(), cfg.quantization);
    if (!clean) {
      std::string msg = fmt::format("{}: the checkpoint does not match config.json ({} layers, hidden {}, {} heads)",
                                    dir.string(), cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads);
      if (!missing.empty()) {
        // A huge num_hidden_layers lists millions of names: the first ones say enough.
        const size_t shown = std::min<size_t>(missing.size(), 40);
        msg += fmt::format("\nmissing tensors ({}):{}", missing.size(),
                           join_names(std::vector<std::string>(missing.begin(), missing.begin() + shown)));
        if (shown < missing.size()) msg += fmt::format("\n  ... and {} more", missing.size() - shown);
      }
      if (!unexpected.empty()) msg += fmt::format("\nunexpected tensors ({}):{}", unexpected.size(), join_names(unexpected));
      if (!mismatched.empty()) msg += fmt::format("\nshape mismatches ({}):{}", mismatched.size(), join_names(mismatched));
      msg += "\nIs config.json the one that belongs to these weights?";
      throw ModelError(msg);
    }
  }
  auto model = std::make_unique<FalconForCausalLM>(cfg, options.device);
  std::map<std::string, at::Tensor*> slots;
  for (auto& [name, t] : model->named_parameters()) slots[name] = t;

  // For quantize-on-load: how many tensors each body linear still waits for.
  std::map<std::string, std::pair<LinearPtr*, int>> pending_linears;
  std::map<std::string, std::string> linear_of_tensor;
  if (options.on_linear_loaded) {
    for (auto& slot : model->linears()) {
      if (slot.name == "lm_head") continue;
      int n = 0;
      for (auto& [suffix, t] : (*slot.layer)->named_tensors()) {
        linear_of_tensor[slot.name + "." + suffix] = slot.name;
        ++n;
      }
      pending_linears[slot.name] = {slot.layer, n};
    }
  }

  // Names and shapes were checked above; what is left to catch here is a tensor in two shards.
  std::set<std::string> loaded;
  for (const auto& shard_path : files.shards) {
    auto shard = safetensors::SafetensorsFile::open(shard_path);
    for (const auto& info : shard.header().tensors) {
      std::string name = info.name;
      if (name == "lm_head.weight" && cfg.tie_word_embeddings) {
        if (tying != HeadTying::kEmbeddingFromHead) continue;  // a copy of the embedding
        name = "transformer.word_embeddings.weight";           // the only copy: the embedding is tied to it
      }
      auto it = slots.find(name);
      if (it == slots.end()) continue;  // an ignorable buffer (rotary inv_freq ...)
      if (!loaded.insert(name).second)
        throw ModelError(fmt::format("{}: tensor '{}' appears in more than one shard", dir.string(), info.name));
      // One tensor at a time: convert straight from the mapping into the target, then let its
      // file pages go, so host memory holds the model plus about one tensor of the file.
      at::Tensor view = safetensors::tensor_view(shard, info);
      if (!options.device.is_cpu() && view.scalar_type() != options.dtype) {
        // A blocking host-to-device copy with a dtype change converts on the host (LibTorch avoids
        // a device temporary): a host copy in the wider dtype, and twice the bytes moved. Copy the
        // stored bytes, convert on the device.
        *it->second = view.to(options.device, view.scalar_type(), /*non_blocking=*/false, /*copy=*/true)
                          .to(options.dtype);
      } else {
        *it->second = view.to(options.device, options.dtype, /*non_blocking=*/false, /*copy=*/true);
      }
      shard.mapping()->release(shard.data_offset() + info.begin, info.nbytes());
      if (auto lin = linear_of_tensor.find(info.name); lin != linear_of_tensor.end()) {
        auto& [slot, waiting] = pending_linears.at(lin->second);
        if (--waiting == 0) options.on_linear_loaded(lin->second, *slot);  // may replace the layer
      }
    }
  }
  if (cfg.tie_word_embeddings) model->tie_lm_head();
  return model;
}

std::unique_ptr<FalconForCausalLM> random_falcon(const FalconConfig& cfg, uint64_t seed, const LoadOptions& options) {
  auto model = std::make_unique<FalconForCausalLM>(cfg, options.device);
  std::map<std::string, at::Tensor*> slots;
  for (auto& [name, t] : model->named_parameters()) slots[name] = t;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  // Drawn in the fixed order of the parameter list, in fp32 on the CPU, then converted: the
  // values do not depend on the target device or dtype.
  for (const auto& spec : falcon_parameter_specs(cfg)) {
    at::Tensor t;
    switch (spec.kind) {
      case ParamSpec::kEmbedding:
      case ParamSpec::kLinearWeight:
        t = at::normal(0.0, cfg.initializer_range, spec.shape, gen, f32);
        break;
      case ParamSpec::kNormWeight:
        t = at::ones(spec.shape, f32);
        break;
      case ParamSpec::kLinearBias:
      case ParamSpec::kNormBias:
        t = at::zeros(spec.shape, f32);
        break;
    }
    *slots.at(spec.name) = t.to(options.device, options.dtype);
  }
  if (cfg.tie_word_embeddings) model->tie_lm_head();
  return model;
}

void save_falcon_weights(FalconForCausalLM& model, const std::filesystem::path& dir, uint64_t max_shard_bytes) {
  std::filesystem::create_directories(dir);
  std::vector<at::Tensor> host;  // contiguous CPU copies, alive while the shards are written
  std::vector<safetensors::TensorData> tensors;
  auto params = model.named_parameters();
  host.reserve(params.size());
  for (auto& [name, t] : params) {
    if (!t->defined()) throw ModelError(fmt::format("save_falcon: parameter '{}' is not loaded", name));
    host.push_back(t->detach().to(at::kCPU).contiguous());
    const at::Tensor& h = host.back();
    tensors.push_back({name, safetensors::from_scalar_type(h.scalar_type()), h.sizes().vec(),
                       {static_cast<const std::byte*>(h.data_ptr()), h.nbytes()}});
  }
  safetensors::write_sharded(dir, tensors, max_shard_bytes);
}

void save_falcon(FalconForCausalLM& model, const std::filesystem::path& dir, const std::string& config_json_text,
                 uint64_t max_shard_bytes) {
  save_falcon_weights(model, dir, max_shard_bytes);
  io::write_file_atomic(dir / "config.json", config_json_text);
}

void write_random_checkpoint(const std::filesystem::path& config_json, const std::filesystem::path& dir, uint64_t seed,
                             uint64_t max_shard_bytes) {
  FalconConfig cfg = FalconConfig::load(config_json);
  std::ifstream in(config_json, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  auto model = random_falcon(cfg, seed);
  save_falcon(*model, dir, text.str(), max_shard_bytes);
}

}  // namespace autotrain::model
