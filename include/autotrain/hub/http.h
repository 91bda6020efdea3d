// HTTP for downloads from the Hugging Face Hub. libcurl is loaded when the first request is made
// (dlopen), not linked: the program starts, and everything but downloading runs, on a machine
// without it (a GPU node with a bare image, say). No LibTorch.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace autotrain::hub {

// A download that cannot be done: the message says what, where and how to fix it.
class HubError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A transfer that failed on the way (no connection, reset, timed out): worth trying again,
// unlike a missing libcurl or a redirect loop. After the last try, it means the Hub cannot be
// reached from here (a runtime condition, not a mistake in what was asked).
class NetworkError : public HubError {
 public:
  using HubError::HubError;
};

struct HttpResponse;

struct HttpRequest {
  std::string method = "GET";        // GET, HEAD, POST or PUT
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // what a POST or PUT sends, unless `upload` names a file
  // A PUT of part of a file (bytes [offset, offset + length)), streamed from the disk.
  struct FileSlice {
    std::string path;
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  std::optional<FileSlice> upload;
  bool retry = true;  // false: a request that must not be sent twice (a commit)
  // Where a 2xx body goes, chunk by chunk; false stops the transfer. Without it the body is kept
  // in HttpResponse::body. Bodies of other statuses always go there (the first 64 KiB: the
  // hub's error message).
  std::function<bool(std::string_view)> sink;
  // Called once, before the first chunk goes to the sink, with the status and headers (a
  // resumed download checks that the server sent the part asked for); false stops it.
  std::function<bool(const HttpResponse&)> on_headers;
  // Called with (bytes so far, bytes expected or 0) while the body arrives (or, for an upload,
  // while it is sent); false stops it.
  std::function<bool(uint64_t, uint64_t)> progress;
};

struct HttpResponse {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;
  std::string redirect_url;  // a 3xx's Location, made absolute against the request's URL

  // The last header of that name (case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
};

// Performs one request; redirects are returned, not followed, so the caller decides which
// headers (the token) go to the next host. Proxies come from the usual variables (https_proxy,
// no_proxy, ...); a CA bundle from SSL_CERT_FILE, REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE.
// Throws HubError when libcurl is missing or no response came (the URL and curl's reason).
HttpResponse perform(const HttpRequest& request);

// "scheme://host[:port]" of a URL, lower-cased: tokens go only where this equals the endpoint's.
std::string url_origin(std::string_view url);

// Percent-encodes everything but unreserved characters, and '/' when keep_slash (file paths in
// resolve URLs keep their folders; revisions such as "refs/pr/1" do not).
std::string url_quote(std::string_view text, bool keep_slash);

}  // namespace autotrain::hub
