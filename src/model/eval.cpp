#include "autotrain/model/eval.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/core/grad_mode.h>
#include <fmt/format.h>

#include "autotrain/device/device_choice.h"
#include "autotrain/model/loader.h"
#include "autotrain/model/loss.h"
#include "autotrain/model/model_dir.h"

namespace autotrain::model {

namespace {

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "fp32") return at::kFloat;
  if (s == "fp16") return at::kHalf;
  if (s == "bf16") return at::kBFloat16;
  throw EvalUsageError(fmt::format("--dtype {}: expected fp32, fp16 or bf16", s));
}

}  // namespace

EvalResult run_eval(const EvalOptions& o) {
  if ((!o.adapter.empty() || o.load_in_4bit) && !o.load_model)
    throw EvalUsageError("--adapter and --load-in-4bit need the QLoRA loader, which this build does not have");
  if (o.double_quant && !o.load_in_4bit)
    throw EvalUsageError("--double-quant quantizes the 4-bit base's statistics: it needs --load-in-4bit");
  if (!o.adapter.empty() && !std::filesystem::exists(std::filesystem::path(o.adapter) / "adapter_config.json"))
    throw EvalUsageError(fmt::format("--adapter {}: no adapter_config.json there; give a PEFT adapter folder", o.adapter));
  at::ScalarType dtype = parse_dtype(o.dtype);
  at::Device device = at::kCPU;
  try {
    device = device::choose_device(o.device, "--device");
  } catch (const device::DeviceChoiceError& e) {
    throw EvalUsageError(e.what());
  }
  if (o.block_size && *o.block_size < 2)
    throw EvalUsageError(fmt::format("--block-size {}: a block needs at least 2 tokens", *o.block_size));

  ModelDir dir;
  try {
    dir = resolve_model_dir(o.model);
  } catch (const ModelError& e) {
    throw EvalUsageError(e.what());  // a --model that names nothing is a command-line mistake
  }
  FalconConfig cfg = FalconConfig::load(dir.path / "config.json");
  // Capped as `data` caps BLOCK_SIZE, so that eval scores the blocks training saw.
  std::vector<std::string> warnings;
  int64_t block = o.block_size.value_or(std::min<int64_t>(1024, cfg.max_position_embeddings));
  if (block > cfg.max_position_embeddings) {
    warnings.push_back(fmt::format("--block-size {} is larger than the model's max_position_embeddings ({}, {}); using {}",
                                   block, cfg.max_position_embeddings, (dir.path / "config.json").string(),
                                   cfg.max_position_embeddings));
    block = cfg.max_position_embeddings;
  }

  const EvalTokens stream = read_eval_rows(o.data, o.text_column, dir.path, cfg.vocab_size);
  const std::vector<int64_t>& ids = stream.ids;
  const int64_t blocks = static_cast<int64_t>(ids.size()) / block;
  if (blocks == 0)
    throw EvalUsageError(fmt::format("{}: {} tokens, fewer than one block of {} (lower --block-size)", o.data.string(),
                                     ids.size(), block));

  LoadOptions load;
  load.dtype = dtype;
  load.device = device;
  auto model = o.load_model ? o.load_model(dir.path, load) : load_falcon(dir.path, load);
  at::NoGradGuard no_grad;
  // Without gradients nothing is gained by large loss chunks: keep each chunk's fp32 logits near
  // 32 MiB (129 tokens for Falcon's 65,024-token vocabulary) rather than the training default.
  const int64_t loss_chunk = std::clamp<int64_t>((int64_t{32} << 20) / (4 * cfg.vocab_size), 16, 1024);
  const int64_t per_batch = std::max<int64_t>(1, o.tokens_per_batch / block);
  auto as_blocks = [&](const std::vector<int64_t>& v) {
    return at::tensor(v, at::TensorOptions().dtype(at::kLong)).narrow(0, 0, blocks * block).view({blocks, block});
  };
  const at::Tensor all = as_blocks(ids), all_labels = as_blocks(stream.labels);
  double sum = 0;
  int64_t tokens = 0;
  for (int64_t start = 0; start < blocks; start += per_batch) {
    int64_t n = std::min(per_batch, blocks - start);
    at::Tensor batch = all.narrow(0, start, n).to(device);
    FalconInputs in;
    in.input_ids = batch;
    auto out = causal_lm_loss(model->lm_head(), model->hidden_states(in), all_labels.narrow(0, start, n).to(device),
                              LossReduction::kSum, loss_chunk);
    sum += out.loss.item<double>();
    tokens += out.tokens;
  }
  if (tokens == 0)
    throw EvalUsageError(fmt::format("{}: every label of the {} block{} is -100, so there is nothing to score", o.data.string(),
                                     blocks, blocks == 1 ? "" : "s"));
  if (!std::isfinite(sum))
    // Every token was scored: a nan or inf loss comes from the weights (the base's, or the
    // adapter's), not the data. A number of null would read as a result.
    throw std::runtime_error(fmt::format(
        "{}: the loss is {} over {} tokens: the model's weights{} hold nan or inf values; check the checkpoint",
        dir.path.string(), std::isnan(sum) ? "nan" : "inf", tokens, o.adapter.empty() ? "" : " or the adapter's"));
  EvalResult r;
  r.loss = sum / static_cast<double>(tokens);
  r.perplexity = std::exp(r.loss);
  r.tokens = tokens;
  r.blocks = blocks;
  r.block_size = block;
  r.model_dir = dir.path.string();
  r.device = device.str();
  r.warnings = std::move(warnings);
  return r;
}

}  // namespace autotrain::model
