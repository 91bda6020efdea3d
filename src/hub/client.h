// What the downloader and the uploader share (internal to src/hub/): requests to one Hub
// endpoint with the token where it belongs, retries, and the Hub's errors made into messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "autotrain/hub/hub.h"

namespace autotrain::hub {

constexpr int kMaxRedirects = 10;
constexpr int kAttempts = 4;  // per request: network errors, 408, 429 and 5xx are tried again

inline const char* type_word(RepoType type) { return type == RepoType::model ? "model" : "dataset"; }

// The Hub's own words for a failed response (X-Error-Message, or the JSON body's "error").
std::string hub_message(const HttpResponse& r);

// The error for a response with status >= 400, as huggingface_hub classifies it (X-Error-Code:
// GatedRepo, RepoNotFound, RevisionNotFound, EntryNotFound; 401, 403, 429), with what to do.
// `writing`: the request wanted to change the repository (the 403 advice differs).
[[noreturn]] void fail(const HttpResponse& r, std::string_view what, std::string_view repo_id, RepoType type,
                       const HubOptions& options, bool writing = false);

bool retryable(long status);
void pause_before_retry(int attempt);

// A URL without its query: signed storage URLs must not end up in messages.
std::string shown_url(std::string_view url);

class Client {
 public:
  explicit Client(const HubOptions& options);

  // One request, following redirects within the endpoint's origin (a renamed repository); a
  // redirect elsewhere (the CDN) is returned to the caller unless `follow_all`. Retries what may
  // pass, except a request that streams into a sink: its caller resumes from what the sink got.
  HttpResponse request(HttpRequest r, bool follow_all = false);

  // GET (or POST `body` as JSON) and parse the answer; a failure becomes fail()'s error.
  nlohmann::json get_json(const std::string& url, std::string_view what, std::string_view repo_id, RepoType type,
                          std::string* next_page = nullptr);
  nlohmann::json post_json(const std::string& url, const std::string& body, std::vector<std::string> headers,
                           std::string_view what, std::string_view repo_id, RepoType type);

  const HubOptions& options() const { return options_; }

 private:
  std::vector<std::string> headers_for(const std::string& url, const std::vector<std::string>& extra) const;
  static std::string next_link(const std::string& link);

  HubOptions options_;
  std::string origin_;
};

std::string api_base(const HubOptions& o, RepoType type, std::string_view repo_id);
std::string resolve_url(const HubOptions& o, RepoType type, std::string_view repo_id, std::string_view commit,
                        std::string_view path);

}  // namespace autotrain::hub
