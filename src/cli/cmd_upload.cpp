// autotrain upload REPO_ID [FOLDER] [--repo-type model|dataset] [--public] [--revision R]
//                  [--commit-message M] [--include P]... [--exclude P]... [--json]:
// a folder (a project after `train`) to a Hugging Face Hub repository, created if needed, in one
// commit (as `huggingface-cli upload`); what PUSH_TO_HUB=True does at the end of `train`.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autotrain/hub/hub.h"
#include "autotrain/model/model_dir.h"
#include "common.h"

namespace autotrain::cli {

namespace {

struct UploadCommandOptions {
  std::string repo_id;
  std::string folder = ".";
  std::string repo_type = "model";
  std::string revision = "main";
  std::string message = "Upload folder with autotrain";
  std::vector<std::string> include, exclude;
  bool make_public = false;
  bool json = false;
};

int run_upload(const GlobalOptions& g, const UploadCommandOptions& o) {
  const hub::HubOptions options = hub_options(g);  // first: the config may set HF_HUB_OFFLINE
  if (hub::offline()) {
    fmt::print(stderr, "error: HF_HUB_OFFLINE is set, so nothing is uploaded; unset it to upload\n");
    return kExitUsage;
  }
  const hub::RepoType type = o.repo_type == "dataset" ? hub::RepoType::dataset : hub::RepoType::model;
  if (!model::looks_like_repo_id(o.repo_id) || o.repo_id.find('/') == std::string::npos) {
    fmt::print(stderr, "error: '{}' is not a repository id: write USER/NAME (or ORG/NAME)\n", o.repo_id);
    return kExitUsage;
  }
  hub::UploadOptions upload;
  upload.revision = o.revision;
  upload.commit_message = o.message;
  upload.include = o.include;
  upload.exclude = o.exclude;
  // Everything local is checked before the Hub is asked anything (no empty repository is left).
  try {
    hub::files_to_upload(o.folder, upload);
  } catch (const hub::HubError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return kExitUsage;
  }
  const hub::Account account = hub::whoami(options);  // a missing or bad token, said as such
  if (account.token_role == "read")
    fmt::print(stderr, "warning: the token of {} has the \"read\" role; uploading needs \"write\"\n", account.name);
  const std::string url = hub::create_repo(o.repo_id, type, !o.make_public, options);
  // A branch that is not there yet is made from main, as `hf upload --revision` makes it.
  if (o.revision != "main" && hub::create_branch_if_missing(o.repo_id, type, o.revision, options))
    fmt::print(stderr, "created branch {} of {}\n", o.revision, o.repo_id);
  const hub::UploadSummary s = hub::upload_folder(o.folder, o.repo_id, type, upload, options);
  if (o.json) {
    fmt::print("{}\n", nlohmann::json{{"repo_id", o.repo_id},
                                      {"url", url},
                                      {"files", s.files},
                                      {"changed", s.changed},
                                      {"lfs_uploaded", s.lfs_uploaded},
                                      {"bytes_uploaded", s.bytes_uploaded},
                                      {"committed", s.committed},
                                      {"commit_oid", s.commit_oid},
                                      {"commit_url", s.commit_url}}
                           .dump());
    return kExitOk;
  }
  if (s.committed)
    fmt::print(stderr, "{} of {} files changed ({} uploaded); commit {}\n", s.changed, s.files.size(),
               hub::human_bytes(s.bytes_uploaded), s.commit_oid.substr(0, 12));
  else
    fmt::print(stderr, "nothing to commit: the {} files are on the Hub as they are here\n", s.files.size());
  fmt::print("{}\n", s.commit_url.empty() ? url : s.commit_url);
  return kExitOk;
}

}  // namespace

Subcommand add_upload_command(CLI::App& app, GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("upload", "Upload a folder (a trained project) to a Hugging Face Hub repository");
  auto o = std::make_shared<UploadCommandOptions>();
  sub->add_option("repo_id", o->repo_id, "Repository id (user/name or org/name); created private if it does not exist")
      ->required()
      ->check(not_empty("me/falcon-7b-lora"));
  sub->add_option("folder", o->folder, "Folder to upload (default: the current one)")->check(not_empty("runs/tiny-tiny"));
  sub->add_option("--repo-type", o->repo_type, "model (default) or dataset")->check(CLI::IsMember({"model", "dataset"}));
  sub->add_option("--revision", o->revision, "Branch to commit to, made from main when missing (default: main)")->check(not_empty("main"));
  sub->add_option("--commit-message", o->message, "Commit message")->check(not_empty("Upload my adapter"));
  sub->add_option("--include", o->include, "Only files matching this pattern (repeatable)")
      ->allow_extra_args(false)
      ->check(not_empty("'*.safetensors'"));
  sub->add_option("--exclude", o->exclude, "Leave out files matching this pattern (repeatable), e.g. 'checkpoint-*/'")
      ->allow_extra_args(false)
      ->check(not_empty("'checkpoint-*/'"));
  sub->add_flag("--public", o->make_public, "Create the repository public (default: private, as AutoTrain creates it)");
  sub->add_flag("--json", o->json, "Print {repo_id, url, files, changed, committed, commit_oid, ...} as JSON");
  return {sub, [&g, o] { return run_upload(g, *o); }};
}

}  // namespace autotrain::cli
