// autotrain download REPO_ID [--repo-type model|dataset] [--revision R] [--include P]... [--json]:
// fetch a model or dataset from the Hugging Face Hub into the Hugging Face cache (as
// `huggingface-cli download` does), e.g. on a login node before a batch job runs offline.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autotrain/hub/hub.h"
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

int run_download(const DownloadOptions& o) {
  const hub::RepoType type = o.repo_type == "dataset" ? hub::RepoType::dataset : hub::RepoType::model;
  if (hub::offline()) {
    fmt::print(stderr, "error: HF_HUB_OFFLINE is set, so nothing is downloaded; unset it to download\n");
    return kExitUsage;
  }
  // The token: HF_TOKEN, else the token file `autotrain setup --token` writes.
  const hub::HubOptions options = hub::options_from_env();
  const hub::RepoListing listing = hub::list_repo(o.repo_id, type, o.revision, options);
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

Subcommand add_download_command(CLI::App& app, GlobalOptions&) {
  CLI::App* sub = app.add_subcommand("download", "Download a model or dataset from the Hugging Face Hub into its cache");
  auto o = std::make_shared<DownloadOptions>();
  sub->add_option("repo_id", o->repo_id, "Repository id (org/name)")->required()->check(not_empty("tiiuae/falcon-7b"));
  sub->add_option("--repo-type", o->repo_type, "model (default) or dataset")
      ->check(CLI::IsMember({"model", "dataset"}));
  sub->add_option("--revision", o->revision, "Branch, tag or commit (default: main)")->check(not_empty("main"));
  sub->add_option("--include", o->include,
                  "Only files matching this pattern (repeatable; default: a model's weights, configs and tokenizer, "
                  "or a dataset's data files)")
      ->allow_extra_args(false);
  sub->add_flag("--json", o->json, "Print {repo_id, commit, snapshot, files, ...} as JSON");
  return {sub, [o] { return run_download(*o); }};
}

}  // namespace autotrain::cli
