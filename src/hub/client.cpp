#include "client.h"

#include <chrono>
#include <thread>

#include <fmt/format.h>

namespace autotrain::hub {

std::string hub_message(const HttpResponse& r) {
  if (auto m = r.header("x-error-message")) return *m;
  try {
    const auto j = nlohmann::json::parse(r.body);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
  } catch (const std::exception&) {
  }
  return {};
}

// The error for a response with status >= 400 (or a missing piece), as huggingface_hub
// classifies it, with what to do about it.
[[noreturn]] void fail(const HttpResponse& r, std::string_view what, std::string_view repo_id, RepoType type,
                       const HubOptions& options, bool writing) {
  const std::string code = r.header("x-error-code").value_or("");
  const std::string message = hub_message(r);
  const std::string said = message.empty() ? "" : fmt::format(" (the Hub says: {})", message);
  const std::string login = options.token ? "" : "; if it is private, log in: `autotrain setup --token -` (or set HF_TOKEN)";
  const std::string page = fmt::format("{}/{}{}", options.endpoint, type == RepoType::dataset ? "datasets/" : "", repo_id);
  if (code == "GatedRepo")
    throw HubError(fmt::format("{} {} is gated: accept its conditions at {} with the account of your token{}, then run "
                               "again{}",
                               type_word(type), repo_id, page, options.token ? "" : " and log in (`autotrain setup --token -`)",
                               said));
  if (code == "RepoNotFound" || r.status == 401)
    throw HubError(fmt::format("{} {}: no such repository on {} (or it is private and {}){}; check the id{}",
                               type_word(type), repo_id, options.endpoint,
                               options.token ? "your token cannot read it" : "no token was sent", said, login));
  if (code == "RevisionNotFound")
    throw HubError(fmt::format("{}: no such revision in {} {}{}", what, type_word(type), repo_id, said));
  if (code == "EntryNotFound")
    throw HubError(fmt::format("{}: no such file in {} {}{}", what, type_word(type), repo_id, said));
  if (r.status == 403)
    throw HubError(fmt::format("{}: access denied (HTTP 403){}; check that your token may {} {}{}", what, said,
                               writing ? "write to" : "read", page,
                               writing ? " (a token with the \"write\" role, for a repository of your account or of an "
                                         "organization you may write to)"
                                       : ""));
  if (r.status == 429)
    throw HubError(fmt::format("{}: the Hub is limiting the rate of requests (HTTP 429){}; wait a few minutes{}", what,
                               said, options.token ? "" : ", or log in: requests with a token get a higher limit"));
  throw HubError(fmt::format("{}: HTTP {} from {}{}{}", what, r.status, options.endpoint, said,
                             r.status == 404 && code.empty() ? "; is HF_ENDPOINT a Hugging Face Hub (or a mirror of one)?"
                             : r.status >= 500               ? "; the Hub has trouble: try again later"
                                                             : ""));
}

bool retryable(long status) { return status == 408 || status == 429 || status >= 500; }

void pause_before_retry(int attempt) { std::this_thread::sleep_for(std::chrono::milliseconds(500 << attempt)); }

std::string shown_url(std::string_view url) { return std::string(url.substr(0, url.find('?'))); }

Client::Client(const HubOptions& options) : options_(options), origin_(url_origin(options.endpoint)) {}

HttpResponse Client::request(HttpRequest r, bool follow_all) {
  const int attempts = r.sink || r.upload || !r.retry ? 1 : kAttempts;
  for (int attempt = 0;; ++attempt) {
    HttpRequest hop = r;
    HttpResponse response;
    std::string why;  // what went wrong, when it is worth another try
    try {
      for (int redirects = 0;; ++redirects) {
        hop.headers = headers_for(hop.url, r.headers);
        response = perform(hop);
        const bool redirect = response.status >= 300 && response.status < 400 && !response.redirect_url.empty();
        if (!redirect) break;
        if (!follow_all && url_origin(response.redirect_url) != origin_) break;
        if (redirects == kMaxRedirects) throw HubError(fmt::format("{}: too many redirects", shown_url(r.url)));
        hop.url = response.redirect_url;
      }
      if (retryable(response.status))
        why = fmt::format("{} {}: HTTP {}", r.method, shown_url(hop.url), response.status);
    } catch (const NetworkError& e) {
      if (attempt + 1 >= attempts)
        throw NetworkError(fmt::format("{} (check HF_ENDPOINT={}, the network and its proxy, https_proxy; with "
                                       "HF_HUB_OFFLINE=1 only the cache is used)",
                                       e.what(), options_.endpoint));
      why = e.what();
    }
    if (why.empty() || attempt + 1 >= attempts) return response;
    fmt::print(stderr, "warning: {}; trying again in {:.1f} s\n", why, 0.5 * (1 << attempt));
    pause_before_retry(attempt);
  }
}

nlohmann::json Client::get_json(const std::string& url, std::string_view what, std::string_view repo_id, RepoType type,
                                std::string* next_page) {
  HttpRequest get;
  get.url = url;
  HttpResponse r = request(get);
  if (r.status >= 400 || r.status < 200) fail(r, what, repo_id, type, options_);
  if (next_page) *next_page = next_link(r.header("link").value_or(""));
  try {
    return nlohmann::json::parse(r.body);
  } catch (const std::exception& e) {
    throw HubError(fmt::format("{}: {} answered with something that is not JSON ({}); is HF_ENDPOINT a Hugging Face Hub?",
                               what, shown_url(url), e.what()));
  }
}

nlohmann::json Client::post_json(const std::string& url, const std::string& body, std::vector<std::string> headers,
                                 std::string_view what, std::string_view repo_id, RepoType type) {
  HttpRequest post;
  post.method = "POST";
  post.url = url;
  post.body = body;
  post.headers = std::move(headers);
  if (post.headers.empty()) post.headers.push_back("Content-Type: application/json");
  HttpResponse r = request(post);
  if (r.status >= 400 || r.status < 200) fail(r, what, repo_id, type, options_, /*writing=*/true);
  try {
    return r.body.empty() ? nlohmann::json::object() : nlohmann::json::parse(r.body);
  } catch (const std::exception& e) {
    throw HubError(fmt::format("{}: {} answered with something that is not JSON ({}); is HF_ENDPOINT a Hugging Face Hub?",
                               what, shown_url(url), e.what()));
  }
}

// The token goes to the endpoint's own origin only, never to the storage it redirects to.
std::vector<std::string> Client::headers_for(const std::string& url, const std::vector<std::string>& extra) const {
  std::vector<std::string> h = extra;
  h.push_back("User-Agent: autotrain/" AUTOTRAIN_VERSION);
  if (options_.token && url_origin(url) == origin_) h.push_back("Authorization: Bearer " + *options_.token);
  return h;
}

// The "next" URL of a Link header (the tree API pages its listing).
std::string Client::next_link(const std::string& link) {
  size_t pos = 0;
  while ((pos = link.find('<', pos)) != std::string::npos) {
    const size_t close = link.find('>', pos);
    if (close == std::string::npos) break;
    const size_t end = link.find(',', close);
    const std::string params = link.substr(close, end == std::string::npos ? std::string::npos : end - close);
    if (params.find("rel=\"next\"") != std::string::npos || params.find("rel=next") != std::string::npos)
      return link.substr(pos + 1, close - pos - 1);
    pos = close;
  }
  return {};
}

std::string api_base(const HubOptions& o, RepoType type, std::string_view repo_id) {
  return fmt::format("{}/api/{}s/{}", o.endpoint, type_word(type), repo_id);
}

std::string resolve_url(const HubOptions& o, RepoType type, std::string_view repo_id, std::string_view commit,
                        std::string_view path) {
  return fmt::format("{}/{}{}/resolve/{}/{}", o.endpoint, type == RepoType::dataset ? "datasets/" : "", repo_id,
                     url_quote(commit, false), url_quote(path, true));
}


}  // namespace autotrain::hub
