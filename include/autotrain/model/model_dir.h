// Where a model named by the user (--model / MODEL_NAME) lives on disk: a local folder, or a
// snapshot in the Hugging Face cache. No LibTorch.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace autotrain::model {

struct ModelDir {
  std::filesystem::path path;  // the folder holding config.json
  std::string source;          // "local folder" or "Hugging Face cache"
};

// Looks up an environment variable; tests pass a fake one.
using EnvLookup = std::function<std::optional<std::string>(const char*)>;
std::optional<std::string> process_env(const char* name);

// The Hugging Face hub cache folder: $HF_HUB_CACHE, else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (huggingface_hub's rules).
std::filesystem::path hf_hub_cache(const EnvLookup& env = process_env);

// Resolves `name` in order: an existing local folder; the Hugging Face cache
// (<cache>/models--ORG--NAME/snapshots/<refs/main>/). Throws ModelError listing the places
// looked at and how to fix it. The folder must hold config.json, or, with `needs_one_of`, one of
// those files (a tokenizer-only repository: tokenizer.json or tokenizer.model).
ModelDir resolve_model_dir(std::string_view name, const EnvLookup& env = process_env,
                           const std::vector<std::string>& needs_one_of = {"config.json"});

}  // namespace autotrain::model
