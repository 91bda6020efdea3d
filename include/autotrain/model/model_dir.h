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

enum class RepoType { model, dataset };

// Downloads a repository that is missing from the Hugging Face cache into it, at its main branch:
// what a use of it needs (for a model, `needs` is the resolver's needs_one_of: config.json for a
// whole model, tokenizer files for a tokenizer only). Throws (std::runtime_error) saying why not.
// The program installs the hub downloader (hub::install_repo_fetcher); without one (tests,
// library users), nothing is downloaded and a missing repository is reported as missing.
// `weights`: false when only the config and tokenizer are needed (`data`), which the next
// whole-model use completes.
using RepoFetcher = std::function<void(std::string_view repo_id, RepoType type, const std::vector<std::string>& needs,
                                       bool weights)>;
void set_repo_fetcher(RepoFetcher fetcher);
const RepoFetcher& repo_fetcher();

// "org/name" or "name": the characters the hub allows in repository ids.
bool looks_like_repo_id(std::string_view s);

// huggingface_hub's folder for a repository inside the cache: "models--org--name",
// "datasets--org--name".
std::string hub_repo_folder(std::string_view repo_id, RepoType type);

// The snapshot folder that `revision` names in a repository's cache folder `repo_dir`: a commit
// (40 hex digits) names snapshots/<commit> itself, a branch or tag goes through refs/<revision>.
// Empty when the ref is missing or does not hold a commit; the folder itself may not exist.
std::filesystem::path hub_snapshot_path(const std::filesystem::path& repo_dir, std::string_view revision = "main");

// Resolves `name` in order: an existing local folder; the Hugging Face cache
// (<cache>/models--ORG--NAME/snapshots/<refs/main>/); a download into that cache when a repo
// fetcher is installed. Throws ModelError listing the places looked at and how to fix it. The folder must hold config.json, or, with `needs_one_of`, one of
// those files (a tokenizer-only repository: tokenizer.json or tokenizer.model).
ModelDir resolve_model_dir(std::string_view name, const EnvLookup& env = process_env,
                           const std::vector<std::string>& needs_one_of = {"config.json"}, bool weights = true);

}  // namespace autotrain::model
