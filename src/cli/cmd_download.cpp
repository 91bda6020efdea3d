// autotrain download REPO_ID [--repo-type model|dataset] [--revision R] [--include P]... [--json]:
// fetch a model or dataset from the Hugging Face Hub into the Hugging Face cache (as
// `huggingface-cli download` does), e.g. on a login node before a batch job runs offline.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autotrain/hub/hub.h"
#include "autotrain/model/model_dir.h"
#include "common.h"

namespace autotrain::cli {

namespace {

struct DownloadOptions {
  std::string repo_id;
  std::string repo_type = "model";
  std::string revision = "main";
  std::vector<std::string> include;
  bool json = false;
};

// The cached snapshot, said as such: what `download` gives when the Hub cannot be asked.
int print_cached(const DownloadOptions& o, const std::filesystem::path& snapshot, bool json) {
  if (json)
    fmt::print("{}\n", nlohmann::json{{"repo_id", o.repo_id},
                                      {"repo_type", o.repo_type},
                                      {"revision", o.revision},
                                      {"commit", snapshot.filename().string()},
                                      {"snapshot", snapshot.string()},
                                      {"from_cache_only", true}}
                           .dump());
  else
    fmt::print("{}\n", snapshot.string());
  return kExitOk;
}

int run_download(const GlobalOptions& g, const DownloadOptions& o) {
  const hub::RepoType type = o.repo_type == "dataset" ? hub::RepoType::dataset : hub::RepoType::model;
  if (!model::looks_like_repo_id(o.repo_id)) {
    fmt::print(stderr, "error: '{}' is not a repository id: write ORG/NAME (or NAME){}\n", o.repo_id,
               o.repo_id.rfind("datasets/", 0) == 0 ? fmt::format(", with --repo-type dataset: `autotrain download "
                                                                  "--repo-type dataset {}`",
                                                                  o.repo_id.substr(9))
                                                    : "");
    return kExitUsage;
  }
  // The token: the config's HF_TOKEN (-c), else $HF_TOKEN, else the token file `autotrain setup
  // --token` writes.
  const hub::HubOptions options = hub_options(g);
  const auto cached = hub::cached_snapshot(o.repo_id, type, o.revision, options);
  if (hub::offline()) {
    if (!cached) {
      fmt::print(stderr, "error: HF_HUB_OFFLINE is set, so nothing is downloaded, and the cache ({}) has no {} of {}; "
                         "unset it to download\n",
                 options.cache.string(), o.revision, o.repo_id);
      return kExitUsage;
    }
    fmt::print(stderr, "HF_HUB_OFFLINE is set: the cached snapshot, not checked against the Hub\n");
    return print_cached(o, *cached, o.json);
  }
  hub::RepoListing listing;
  try {
    listing = hub::list_repo(o.repo_id, type, o.revision, options);
  } catch (const hub::NetworkError& e) {
    // The Hub cannot be reached: a snapshot already here still serves.
    if (!cached) throw;
    fmt::print(stderr, "warning: {}\nusing the cached snapshot, not checked against the Hub\n", e.what());
    return print_cached(o, *cached, o.json);
  }
  std::vector<std::string> files;
  if (o.include.empty()) {
    files = hub::files_to_fetch(listing, type == hub::RepoType::model ? hub::Use::model : hub::Use::dataset);
  } else {
    files = hub::select_files(listing, o.include);
    if (files.empty()) {
      fmt::print(stderr, "error: no file of {} at {} matches {}; --include '*' takes them all\n", o.repo_id,
                 listing.commit.substr(0, 12), nlohmann::json(o.include).dump());
      return kExitUsage;
    }
  }
  const hub::DownloadSummary summary = hub::download(listing, files, options);
  if (o.json) {
    fmt::print("{}\n", nlohmann::json{{"repo_id", o.repo_id},
                                      {"repo_type", o.repo_type},
                                      {"revision", o.revision},
                                      {"commit", listing.commit},
                                      {"snapshot", summary.snapshot.string()},
                                      {"files", summary.files},
                                      {"downloaded_files", summary.downloaded_files},
                                      {"downloaded_bytes", summary.downloaded_bytes}}
                           .dump());
    return kExitOk;
  }
  fmt::print(stderr, "{} files of {} at {} in the cache ({} downloaded now, {})\n", summary.files.size(), o.repo_id,
             listing.commit.substr(0, 12), summary.downloaded_files, hub::human_bytes(summary.downloaded_bytes));
  fmt::print("{}\n", summary.snapshot.string());  // alone on stdout, as huggingface-cli prints it
  return kExitOk;
}

}  // namespace

Subcommand add_download_command(CLI::App& app, GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("download", "Download a model or dataset from the Hugging Face Hub into its cache");
  auto o = std::make_shared<DownloadOptions>();
  sub->add_option("repo_id", o->repo_id, "Repository id (org/name)")->required()->check(not_empty("tiiuae/falcon-7b"));
  sub->add_option("--repo-type", o->repo_type, "model (default) or dataset")
      ->check(CLI::IsMember({"model", "dataset"}));
  sub->add_option("--revision", o->revision, "Branch, tag or commit (default: main)")->check(not_empty("main"));
  sub->add_option("--include", o->include,
                  "Only files matching this pattern (repeatable; default: a model's weights, configs and tokenizer, "
                  "or a dataset's data files)")
      ->allow_extra_args(false)
      ->check(not_empty("'*.safetensors'"));
  sub->add_flag("--json", o->json, "Print {repo_id, commit, snapshot, files, ...} as JSON");
  return {sub, [&g, o] { return run_download(g, *o); }};
}

}  // namespace autotrain::cli
