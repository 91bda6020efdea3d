// The downloads the program makes on its own: a model or dataset id that is not in the cache
// yet is fetched where it is resolved (train, data, eval, generate, ...), as transformers and
// datasets would fetch it, unless HF_HUB_OFFLINE says not to.
#include <algorithm>

#include <fmt/format.h>

#include "autotrain/hub/hub.h"

namespace autotrain::hub {

namespace {

void fetch(std::string_view repo_id, RepoType type, const std::vector<std::string>& needs, bool weights,
           const std::optional<std::string>& token) {
  if (offline())
    throw HubError(fmt::format("HF_HUB_OFFLINE is set, so nothing is downloaded: unset it, or fetch it where the "
                               "network is with `autotrain download {}{}` and share the cache",
                               type == RepoType::dataset ? "--repo-type dataset " : "", repo_id));
  const HubOptions options = options_from_env(model::process_env, token);
  const RepoListing listing = list_repo(repo_id, type, "main", options);
  const bool with_config = type == RepoType::model && std::find(needs.begin(), needs.end(), "config.json") != needs.end();
  const Use use = type == RepoType::dataset ? Use::dataset
                  : !with_config            ? Use::tokenizer
                  : weights                 ? Use::model
                                            : Use::config;
  const std::vector<std::string> files = files_to_fetch(listing, use);
  const auto [count, bytes] = missing_from_cache(listing, files, options);
  fmt::print(stderr, "{} {}{} is not in the cache: downloading {} files ({}) of commit {} from {} into {}\n",
             type == RepoType::dataset ? "dataset" : "model", repo_id,
             use == Use::config ? " (its config and tokenizer)" : use == Use::tokenizer ? " (its tokenizer)" : "", count,
             human_bytes(bytes), listing.commit.substr(0, 12), options.endpoint, options.cache.string());
  download(listing, files, options);
}

}  // namespace

void install_repo_fetcher(const std::optional<std::string>& token) {
  model::set_repo_fetcher(
      [token](std::string_view repo_id, RepoType type, const std::vector<std::string>& needs, bool weights) {
        fetch(repo_id, type, needs, weights, token);
      });
}

}  // namespace autotrain::hub
