// Downloads from the Hugging Face Hub into the Hugging Face cache, laid out exactly as
// huggingface_hub lays it out (blobs/<etag>, snapshots/<commit>/<path> as relative links,
// refs/<revision>, trees/<commit>.json, .locks/), so transformers, datasets and huggingface-cli
// use what we fetch and we use what they fetched. No LibTorch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autotrain/hub/http.h"
#include "autotrain/model/model_dir.h"

namespace autotrain::hub {

using model::RepoType;

struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // $HF_ENDPOINT, without a trailing '/'
  std::optional<std::string> token;                 // sent only to the endpoint's own host
  std::filesystem::path cache;                      // the hub cache (model::hf_hub_cache)
  bool progress = false;                            // a live progress line on stderr
};

// The options huggingface_hub would use here: HF_ENDPOINT, the cache, and the token from
// $HF_TOKEN, $HUGGING_FACE_HUB_TOKEN, else the token file ($HF_TOKEN_PATH, $HF_HOME/token);
// `token` (a config's HF_TOKEN), when given, wins. The placeholder hf_XXX counts as none.
HubOptions options_from_env(const model::EnvLookup& env = model::process_env,
                            const std::optional<std::string>& token = std::nullopt);

// HF_HUB_OFFLINE (else TRANSFORMERS_OFFLINE) is 1/ON/YES/TRUE: nothing may be downloaded.
bool offline(const model::EnvLookup& env = model::process_env);

struct RepoFile {
  std::string path;     // inside the repository, '/'-separated
  uint64_t size = 0;
  std::string blob_id;  // git object id
  std::optional<std::string> lfs_sha256;
};

struct RepoListing {
  std::string repo_id;
  RepoType type = RepoType::model;
  std::string revision;  // as asked (a branch, tag or commit)
  std::string commit;    // what it resolved to
  std::vector<RepoFile> files;
};

// The commit `revision` points to and every file in it (the Hub's revision and tree APIs).
RepoListing list_repo(std::string_view repo_id, RepoType type, std::string_view revision, const HubOptions& options);

struct DownloadSummary {
  std::filesystem::path snapshot;  // <cache>/<type>s--org--name/snapshots/<commit>
  std::vector<std::string> files;  // the files of `listing` asked for, all present now
  size_t downloaded_files = 0;     // of which this call fetched (the others were in the cache)
  uint64_t downloaded_bytes = 0;
};

// Fetches `files` (paths of `listing`) into the cache, then points refs/<revision> at the commit.
// A blob already there is reused; a partial one from an interrupted run is resumed; LFS files are
// checked against their SHA-256. Safe to run from several processes at once (a lock per blob).
DownloadSummary download(const RepoListing& listing, const std::vector<std::string>& files, const HubOptions& options);

// The files of `listing` that match any of `patterns` (fnmatch: `*` also crosses '/', `?`,
// `[...]`; a pattern ending in '/' takes the whole folder), in listing order.
std::vector<std::string> select_files(const RepoListing& listing, const std::vector<std::string>& patterns);
bool glob_match(std::string_view pattern, std::string_view path);

// What a tokenizer-only use fetches, and what a dataset's data files are.
std::vector<std::string> tokenizer_patterns();
std::vector<std::string> dataset_patterns();

// What a use of a repository fetches: a whole model (its top-level *.json, tokenizer.model and
// the weights transformers loads: model.safetensors, or the index's model-*-of-*.safetensors
// shards), a tokenizer only, or a dataset's data files. Throws HubError when the
// repository lacks them (a model with pickle weights only, a dataset with no data file).
enum class Use { model, config, tokenizer, dataset };  // config: the *.json and tokenizer, no weights
std::vector<std::string> files_to_fetch(const RepoListing& listing, Use use);

// How many of `files` (and how many bytes) the cache does not hold yet at the listing's commit.
std::pair<size_t, uint64_t> missing_from_cache(const RepoListing& listing, const std::vector<std::string>& files,
                                               const HubOptions& options);

// The snapshot the cache holds for `revision` (a branch through refs/, or a commit), if any: what
// `download` gives when the Hub cannot be asked (offline, unreachable).
std::optional<std::filesystem::path> cached_snapshot(std::string_view repo_id, RepoType type, std::string_view revision,
                                                     const HubOptions& options);

// "1.5 MB", "7.3 kB", "14.48 GB".
std::string human_bytes(uint64_t n);

// --- Uploads, as huggingface_hub's create_repo + upload_folder make them (without Xet): the
// preupload call decides which files go through LFS, LFS objects are PUT where the Hub says
// (multipart when it asks), then one commit names them all.

// The account the token belongs to (/api/whoami-v2). Throws HubError for a missing or bad token.
struct Account {
  std::string name;
  std::vector<std::string> orgs;
  std::string token_role;  // "read", "write", "fineGrained", or empty when not said
};
// `retry`: false asks once (setup's quick look), true tries again after network errors.
// A token the Hub rejects (401) is a HubError that says "not valid".
Account whoami(const HubOptions& options, bool retry = true);

// Creates the repository unless it exists (then nothing changes, its visibility included).
// Returns its URL.
std::string create_repo(std::string_view repo_id, RepoType type, bool private_repo, const HubOptions& options);

// Creates branch `branch` (from main) unless the repository has that revision already, as
// `hf upload --revision` does before it commits. Returns whether it made one.
bool create_branch_if_missing(std::string_view repo_id, RepoType type, std::string_view branch,
                              const HubOptions& options);

struct UploadOptions {
  std::string revision = "main";
  std::string commit_message = "Upload folder with autotrain";
  std::vector<std::string> include;  // fnmatch patterns on paths in the folder; empty: all
  std::vector<std::string> exclude;  // also always: .git/ and .cache/huggingface/
};

struct UploadSummary {
  std::vector<std::string> files;  // the folder's files that were considered
  size_t changed = 0;              // of which the commit added or changed
  size_t lfs_uploaded = 0;         // LFS objects sent (the others were on the Hub already)
  uint64_t bytes_uploaded = 0;
  bool committed = false;          // false: everything was on the Hub as it is here
  std::string commit_oid;
  std::string commit_url;
};

// The files of `folder` an upload takes (paths in the repository); throws HubError when there
// are none, or one cannot be uploaded (a name that is not UTF-8). Nothing is sent.
std::vector<std::string> files_to_upload(const std::filesystem::path& folder, const UploadOptions& upload);

// Uploads the files of `folder` to an existing repository in one commit.
UploadSummary upload_folder(const std::filesystem::path& folder, std::string_view repo_id, RepoType type,
                            const UploadOptions& upload, const HubOptions& options);

// Lets model::resolve_model_dir and data::resolve_dataset download what the cache lacks, unless
// offline; `token` is the config's HF_TOKEN when there is one. The program calls this once.
void install_repo_fetcher(const std::optional<std::string>& token = std::nullopt);

}  // namespace autotrain::hub
