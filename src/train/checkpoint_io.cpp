#include "checkpoint_io.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <fmt/format.h>

#include "autotrain/io/atomic_file.h"
#include "autotrain/io/json_error.h"
#include "autotrain/io/temp_paths.h"
#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/torch.h"

namespace autotrain::train {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStateFile = "trainer_state.json";
// The rest of the state (loss scaler, logging sums, the run's identity...): transformers'
// TrainerState.load_from_json refuses keys it does not know, so they live in a file of their own.
constexpr const char* kOwnStateFile = "autotrain_state.json";

// The fields of transformers' TrainerState (5.23), which go to trainer_state.json.
bool is_trainer_state_field(const std::string& key) {
  static const std::set<std::string> fields = {
      "epoch", "global_step", "max_steps", "logging_steps", "eval_steps", "save_steps", "train_batch_size",
      "num_train_epochs", "num_input_tokens_seen", "total_flos", "log_history", "best_metric", "best_global_step",
      "best_model_checkpoint", "is_local_process_zero", "is_world_process_zero", "is_hyper_param_search",
      "trial_name", "trial_params", "stateful_callbacks"};
  return fields.count(key) > 0;
}

nlohmann::json read_json_file(const fs::path& dir, const char* name) {
  std::ifstream in(dir / name);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("{}: {} is damaged: {}", dir.string(), name, io::json_error_text(e)));
  }
}

std::vector<std::pair<std::string, at::Tensor>> read_all(const fs::path& path) {
  auto file = safetensors::SafetensorsFile::open(path);
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& t : file.header().tensors) out.emplace_back(t.name, safetensors::tensor_view(file, t).clone());
  return out;
}

}  // namespace

std::vector<CheckpointInfo> list_checkpoints(const fs::path& project) {
  std::vector<CheckpointInfo> out;
  std::error_code ec;
  if (!fs::is_directory(project, ec)) return out;
  for (const auto& entry : fs::directory_iterator(project, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("checkpoint-", 0) != 0) continue;
    const std::string digits = name.substr(11);
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;  // *.tmp, partial
    if (!fs::exists(entry.path() / kStateFile)) continue;
    out.push_back({entry.path(), std::stoll(digits)});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

std::vector<fs::path> unfinished_checkpoints(const fs::path& project) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(project, ec)) return out;
  for (const auto& entry : fs::directory_iterator(project, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || !name.starts_with("checkpoint-") || !name.ends_with(".tmp")) continue;
    const std::string digits = name.substr(11, name.size() - 11 - 4);
    if (!digits.empty() && std::all_of(digits.begin(), digits.end(), ::isdigit)) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void save_checkpoint(const fs::path& project, int64_t step,
                     const std::function<void(const fs::path&)>& write_model_files,
                     const std::vector<at::Tensor>& trainable, const AdamW& optimizer, const at::Device& device,
                     const nlohmann::json& state, int64_t keep, int64_t protect) {
  const fs::path final_dir = project / fmt::format("checkpoint-{}", step);
  const fs::path tmp = project / fmt::format("checkpoint-{}.tmp", step);
  const io::TempPath removed_if_interrupted(tmp, io::TempPath::Kind::kFlatFolder);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    write_model_files(tmp);

    std::vector<std::pair<std::string, at::Tensor>> params;
    for (size_t i = 0; i < trainable.size(); ++i) params.emplace_back(fmt::format("param.{}", i), trainable[i].detach());
    safetensors::save_tensors(tmp / "trainable.safetensors", params);
    safetensors::save_tensors(tmp / "optimizer.safetensors", optimizer.state_tensors(),
                              {{"format", "pt"}, {"steps", std::to_string(optimizer.steps())}});

    std::vector<std::pair<std::string, at::Tensor>> rng = {{"cpu", at::detail::getDefaultCPUGenerator().get_state()}};
    if (!device.is_cpu()) rng.emplace_back("device", at::globalContext().defaultGenerator(device).get_state());
    safetensors::save_tensors(tmp / "rng_state.safetensors", rng);

    nlohmann::json hf = nlohmann::json::object(), own = nlohmann::json::object();
    for (const auto& [key, value] : state.items()) (is_trainer_state_field(key) ? hf : own)[key] = value;
    io::write_file_atomic(tmp / kOwnStateFile, own.dump(2) + "\n");
    io::write_file_atomic(tmp / kStateFile, hf.dump(2) + "\n");  // last: a folder with it is complete
    fs::remove_all(final_dir);
    fs::rename(tmp, final_dir);
  } catch (...) {
    // A full disk or quota: the half-written folder would hold the space the user needs back.
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }

  if (state.value("written_on_signal", nlohmann::json()).is_null()) remove_extra_checkpoints(project, step, protect);
  if (keep > 0) {
    // Oldest first, but never the one just written: a run resumed from an older checkpoint by
    // name can find newer ones (an abandoned continuation) in the folder, and must not lose its own.
    auto all = list_checkpoints(project);
    size_t excess = all.size() > static_cast<size_t>(keep) ? all.size() - static_cast<size_t>(keep) : 0;
    for (const auto& c : all) {
      if (excess == 0) break;
      if (c.step == step || c.step == protect) continue;
      fs::remove_all(c.dir);
      --excess;
    }
  }
}

nlohmann::json read_checkpoint_state(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir / kStateFile, ec)) {
    if (!fs::exists(dir, ec)) throw std::runtime_error(fmt::format("{}: no such folder", dir.string()));
    throw std::runtime_error(fmt::format("{}: not a checkpoint folder (no {})", dir.string(), kStateFile));
  }
  nlohmann::json state = read_json_file(dir, kStateFile);
  if (!fs::exists(dir / kOwnStateFile, ec)) {
    // Checkpoints written before the split hold everything in trainer_state.json (the loss
    // scaler's state always among it); one that holds HF's fields alone needs the other file.
    if (state.is_object() && !state.contains("loss_scale"))
      throw std::runtime_error(fmt::format("{}: {} is missing (the checkpoint is incomplete: copied or synced in part?)",
                                           dir.string(), kOwnStateFile));
    return state;
  }
  nlohmann::json own = read_json_file(dir, kOwnStateFile);
  if (!state.is_object() || !own.is_object())
    throw std::runtime_error(fmt::format("{}: {} or {} is not a JSON object", dir.string(), kStateFile, kOwnStateFile));
  for (const auto& [key, value] : own.items()) state[key] = value;
  return state;
}

std::vector<fs::path> remove_extra_checkpoints(const fs::path& project, int64_t before_step, int64_t protect) {
  std::vector<fs::path> removed;
  for (const auto& c : list_checkpoints(project)) {
    if (c.step >= before_step || c.step == protect) continue;
    try {
      if (read_checkpoint_state(c.dir).value("written_on_signal", nlohmann::json()).is_null()) continue;
    } catch (const std::exception&) {
      continue;  // not ours to judge: resume says what is wrong with it
    }
    std::error_code ec;
    fs::remove_all(c.dir, ec);
    if (!ec) removed.push_back(c.dir);
  }
  return removed;
}

void load_trainable(const fs::path& dir, const std::vector<at::Tensor>& trainable) {
  auto params = read_all(dir / "trainable.safetensors");
  std::map<std::string, at::Tensor> byname(params.begin(), params.end());
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < trainable.size(); ++i) {
    auto it = byname.find(fmt::format("param.{}", i));
    if (it == byname.end() || it->second.sizes() != trainable[i].sizes())
      throw std::runtime_error(fmt::format("{}: trainable tensor {} is missing or has another shape; the checkpoint "
                                           "belongs to a different model or LoRA setting",
                                           dir.string(), i));
    at::Tensor dst = trainable[i];
    dst.copy_(it->second);
  }
}

nlohmann::json load_checkpoint(const fs::path& dir, const std::vector<at::Tensor>& trainable, AdamW& optimizer,
                               const at::Device& device) {
  nlohmann::json state = read_checkpoint_state(dir);
  load_trainable(dir, trainable);
  auto opt_file = safetensors::SafetensorsFile::open(dir / "optimizer.safetensors");
  int64_t steps = 0;
  for (const auto& [k, v] : opt_file.header().metadata)
    if (k == "steps") steps = std::stoll(v);
  optimizer.set_state(steps, read_all(dir / "optimizer.safetensors"));

  auto rng = read_all(dir / "rng_state.safetensors");
  for (const auto& [name, t] : rng) {
    if (name == "cpu") {
      at::Generator gen = at::detail::getDefaultCPUGenerator();
      gen.set_state(t);
    } else if (name == "device" && !device.is_cpu()) {
      at::Generator gen = at::globalContext().defaultGenerator(device);
      gen.set_state(t);
    }
  }
  return state;
}

}  // namespace autotrain::train
