#include "autotrain/model/model_dir.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "autotrain/io/expand_user.h"
#include "autotrain/model/falcon_config.h"
#include "autotrain/io/dangling_link.h"

namespace autotrain::model {

namespace fs = std::filesystem;

std::optional<std::string> process_env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

fs::path hf_hub_cache(const EnvLookup& env) {
  // huggingface_hub passes each of these through os.path.expanduser, then os.path.expandvars:
  // HF_HOME='~/hf' is $HOME/hf, HF_HOME='$SCRATCH/hf' is the SCRATCH variable's /hf. The legacy
  // HUGGINGFACE_HUB_CACHE is read only when HF_HUB_CACHE is unset (its default there).
  auto expand = [&](const std::string& p) {
    return fs::path(io::expand_hf_path(p, [&](const std::string& n) { return env(n.c_str()); }));
  };
  if (auto v = env("HF_HUB_CACHE")) return expand(*v);
  if (auto v = env("HUGGINGFACE_HUB_CACHE")) return expand(*v);
  if (auto v = env("HF_HOME")) return expand(*v) / "hub";
  if (auto v = env("XDG_CACHE_HOME")) return expand(*v) / "huggingface" / "hub";
  return expand("~") / ".cache" / "huggingface" / "hub";
}

namespace {

RepoFetcher& fetcher_slot() {
  static RepoFetcher fetcher;
  return fetcher;
}

}  // namespace

void set_repo_fetcher(RepoFetcher fetcher) { fetcher_slot() = std::move(fetcher); }
const RepoFetcher& repo_fetcher() { return fetcher_slot(); }

bool looks_like_repo_id(std::string_view s) {
  if (s.empty() || s.front() == '/' || s.back() == '/' || s.find("..") != std::string_view::npos) return false;
  int slashes = 0;
  for (char c : s) {
    if (c == '/') {
      ++slashes;
    } else if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  if (slashes > 1) return false;
  // As huggingface_hub validates ids: no part starts or ends with '-' or '.', so "./nope" and
  // ".cache/x" are paths, never ids to download.
  const size_t slash = s.find('/');
  for (std::string_view part : {s.substr(0, slash), slash == std::string_view::npos ? std::string_view() : s.substr(slash + 1)})
    if (!part.empty() && (part.front() == '-' || part.front() == '.' || part.back() == '-' || part.back() == '.'))
      return false;
  return true;
}

namespace {

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

// A link into the cache's blobs/ whose blob is gone: said as such, rather than "no config.json".
std::string dangling_link(const fs::path& p) {
  auto target = io::dangling_link_target(p);
  if (!target) return {};
  return fmt::format("{} is a link to {}, which does not exist: the download is incomplete; download the model again",
                     p.string(), target->string());
}

// A commit id as the Hub writes it: 40 lowercase hex digits (anything else is a branch or tag).
bool is_commit(std::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::string hub_repo_folder(std::string_view repo_id, RepoType type) {
  std::string folder = type == RepoType::model ? "models--" : "datasets--";
  for (char c : repo_id) folder += c == '/' ? std::string("--") : std::string(1, c);
  return folder;
}

fs::path hub_snapshot_path(const fs::path& repo_dir, std::string_view revision) {
  std::string commit(revision);
  if (!is_commit(revision)) {
    // huggingface_hub writes the commit alone; a trailing newline (an edit by hand) is forgiven.
    std::ifstream in(repo_dir / "refs" / revision);
    if (!in || !std::getline(in, commit)) return {};
    commit = trim(commit);
  }
  // Anything else (a path, an empty file) would point outside snapshots/: not a snapshot.
  if (commit.empty() || commit.find('/') != std::string::npos || commit == "." || commit == "..") return {};
  return repo_dir / "snapshots" / commit;
}

ModelDir resolve_model_dir(std::string_view name, const EnvLookup& env, const std::vector<std::string>& needs_one_of,
                           bool weights) {
  std::vector<std::string> looked;
  fs::path local(name);
  auto holds_one = [&](const fs::path& dir) {
    std::error_code ec;
    return std::any_of(needs_one_of.begin(), needs_one_of.end(),
                       [&](const std::string& f) { return fs::exists(dir / f, ec); });
  };
  const std::string wanted = fmt::format("{}", fmt::join(needs_one_of, " or "));
  std::error_code ec;
  // Only "nothing there" makes a model not found (not downloaded yet); a path that cannot be
  // looked at (permissions, I/O) is an error of its own.
  auto unreadable = [&](const std::error_code& e) {
    if (e && e != std::errc::no_such_file_or_directory && e != std::errc::not_a_directory)
      throw ModelError(fmt::format("{}: cannot look at it ({}); make it readable or pass another model", local.string(),
                                   e.message()));
  };
  const bool is_folder = fs::is_directory(local, ec);
  unreadable(ec);
  if (is_folder) {
    if (auto why = dangling_link(local / "config.json"); !why.empty()) throw ModelError(why);
    if (!fs::exists(local / "config.json"))
      throw ModelError(fmt::format("{}: the folder has no config.json; a model folder holds config.json and "
                                   "model.safetensors (or shards with model.safetensors.index.json)",
                                   local.string()));
    return {local, "local folder"};
  }
  const bool is_other = fs::exists(local, ec);
  unreadable(ec);
  if (is_other)
    throw ModelError(fmt::format("{}: is a file; --model takes a model folder or a hub id (org/name)", local.string()));
  looked.push_back(fmt::format("local folder {} (does not exist)", local.string()));

  std::string download_failure;
  if (looks_like_repo_id(name)) {
    const fs::path repo_dir = hf_hub_cache(env) / hub_repo_folder(name, RepoType::model);
    // What the cache holds: the snapshot, or nullopt with what was seen (for the error).
    auto in_cache = [&](std::string& seen) -> std::optional<fs::path> {
      const fs::path snapshot = hub_snapshot_path(repo_dir);
      if (snapshot.empty()) {
        seen = fmt::format("Hugging Face cache {} ({})", repo_dir.string(),
                           fs::exists(repo_dir) ? "no refs/main" : "not downloaded");
        return std::nullopt;
      }
      if (holds_one(snapshot)) return snapshot;
      for (const auto& f : needs_one_of)
        if (auto why = dangling_link(snapshot / f); !why.empty()) throw ModelError(why);
      seen = fmt::format("Hugging Face cache {} (refs/main points to snapshot '{}', which has no {})", repo_dir.string(),
                         snapshot.filename().string(), wanted);
      return std::nullopt;
    };
    std::string seen;
    const RepoFetcher& fetch = repo_fetcher();
    // A snapshot with config.json but no weights (transformers' AutoConfig fetched only that) is
    // completed by a download; without a downloader, the loader says what is missing.
    const bool whole_model =
        weights && std::find(needs_one_of.begin(), needs_one_of.end(), "config.json") != needs_one_of.end();
    auto has_weights = [&](const fs::path& dir) {
      return fs::exists(dir / "model.safetensors", ec) || fs::exists(dir / "model.safetensors.index.json", ec);
    };
    const std::optional<fs::path> cached = in_cache(seen);
    if (cached && (!fetch || !whole_model || has_weights(*cached))) return {*cached, "Hugging Face cache"};
    if (seen.empty()) seen = fmt::format("Hugging Face cache {} (config.json without the weights)", repo_dir.string());
    looked.push_back(seen);
    if (fetch) {
      try {
        fetch(name, RepoType::model, needs_one_of, weights);
        seen.clear();
        if (auto snapshot = in_cache(seen)) return {*snapshot, "Hugging Face Hub (downloaded into the cache)"};
        download_failure = fmt::format("the download left no {} in the cache ({})", wanted, seen);
      } catch (const ModelError&) {
        throw;
      } catch (const std::exception& e) {
        download_failure = e.what();
      }
      // The snapshot without its weights could not be completed (offline, say): the loader says
      // what is missing, as without a downloader.
      if (cached) return {*cached, "Hugging Face cache"};
    }
  }

  std::string list;
  for (const auto& l : looked) list += "\n  - " + l;
  if (!looks_like_repo_id(name))
    // A path (./runs/tiny-falcon in a fresh clone): nothing to download; the folder is missing.
    throw ModelNotFoundError(fmt::format(
        "model '{}' not found. Looked at:{}\nPass the path of a model folder (config.json + *.safetensors); for the "
        "embedded tiny default, `autotrain tiny -c configs/tiny.env` writes it first (scripts/quickstart.sh does).",
        name, list));
  if (!download_failure.empty())
    throw ModelNotFoundError(fmt::format("model '{}' not found. Looked at:{}\nDownloading it failed: {}", name, list,
                                         download_failure));
  throw ModelNotFoundError(fmt::format(
      "model '{}' not found. Looked at:{}\nPass the path of a model folder (config.json + *.safetensors), or download "
      "it first: `autotrain download {}` (HF_HOME / HF_HUB_CACHE choose the cache).",
      name, list, name));
}

}  // namespace autotrain::model
