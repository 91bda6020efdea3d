#include "autotrain/hub/http.h"

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#if AUTOTRAIN_HAVE_CURL_H
#include <curl/curl.h>
#endif

#include "client.h"

namespace autotrain::hub {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

#if AUTOTRAIN_HAVE_CURL_H

// The few libcurl entry points used, looked up once. The OpenSSL build first, then the GnuTLS
// one (both are "libcurl4" on Debian and Ubuntu; either serves HTTPS).
struct Curl {
  decltype(&::curl_global_init) global_init = nullptr;
  decltype(&::curl_easy_init) easy_init = nullptr;
  decltype(&::curl_easy_setopt) easy_setopt = nullptr;
  decltype(&::curl_easy_perform) easy_perform = nullptr;
  decltype(&::curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&::curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&::curl_easy_strerror) easy_strerror = nullptr;
  decltype(&::curl_slist_append) slist_append = nullptr;
  decltype(&::curl_slist_free_all) slist_free_all = nullptr;
  std::string error;  // why it could not be loaded
};

const Curl& curl() {
  static Curl api;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = nullptr;
    for (const char* name : {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so"})
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    if (!lib) {
      api.error = "downloading needs libcurl, which is not installed (Debian/Ubuntu: apt install libcurl4); or "
                  "download on another machine and copy the Hugging Face cache";
      return;
    }
    auto get = [&](auto& fn, const char* symbol) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, symbol));
      if (!fn && api.error.empty()) api.error = fmt::format("libcurl has no {}: it is too old; install libcurl4", symbol);
    };
    get(api.global_init, "curl_global_init");
    get(api.easy_init, "curl_easy_init");
    get(api.easy_setopt, "curl_easy_setopt");
    get(api.easy_perform, "curl_easy_perform");
    get(api.easy_getinfo, "curl_easy_getinfo");
    get(api.easy_cleanup, "curl_easy_cleanup");
    get(api.easy_strerror, "curl_easy_strerror");
    get(api.slist_append, "curl_slist_append");
    get(api.slist_free_all, "curl_slist_free_all");
    if (api.error.empty() && api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) api.error = "libcurl failed to initialise";
  });
  if (!api.error.empty()) throw HubError(api.error);
  return api;
}

struct Transfer {
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  bool sink_stopped = false;
  bool started = false;  // the first chunk of the body has come

  bool body_to_sink() const { return request->sink && response->status >= 200 && response->status < 300; }
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (after a 100 Continue, say): only the last one's headers count.
    t->response->headers.clear();
    const size_t space = line.find(' ');
    t->response->status = space == std::string_view::npos ? 0 : std::strtol(std::string(line.substr(space + 1, 3)).c_str(), nullptr, 10);
  } else if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
    t->response->headers.emplace_back(lower(trim(line.substr(0, colon))), trim(line.substr(colon + 1)));
  }
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view chunk(data, size * count);
  if (t->body_to_sink()) {
    if (!t->started) {
      t->started = true;
      if (t->request->on_headers && !t->request->on_headers(*t->response)) {
        t->sink_stopped = true;
        return 0;
      }
    }
    if (!t->request->sink(chunk)) {
      t->sink_stopped = true;
      return 0;  // curl stops with CURLE_WRITE_ERROR
    }
  } else if (t->response->body.size() < 64 * 1024) {
    t->response->body.append(chunk.substr(0, 64 * 1024 - t->response->body.size()));
  }
  return chunk.size();
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t up_total, curl_off_t up_now) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->request->progress) return 0;
  if (t->request->upload) return t->request->progress(static_cast<uint64_t>(up_now), static_cast<uint64_t>(up_total)) ? 0 : 1;
  if (!t->body_to_sink()) return 0;
  return t->request->progress(static_cast<uint64_t>(now), static_cast<uint64_t>(total)) ? 0 : 1;
}

// The file slice of an upload, read as curl asks for it.
struct UploadSource {
  std::FILE* file = nullptr;
  uint64_t left = 0;
  bool failed = false;
};

size_t on_read(char* buffer, size_t size, size_t count, void* user) {
  auto* u = static_cast<UploadSource*>(user);
  const size_t want = static_cast<size_t>(std::min<uint64_t>(size * count, u->left));
  if (want == 0) return 0;
  const size_t got = std::fread(buffer, 1, want, u->file);
  if (got == 0) {
    u->failed = true;
    return CURL_READFUNC_ABORT;
  }
  u->left -= got;
  return got;
}

std::optional<std::string> ca_bundle() {
  for (const char* name : {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"})
    if (const char* v = std::getenv(name); v && *v) return std::string(v);
  return std::nullopt;
}

#endif  // AUTOTRAIN_HAVE_CURL_H

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  const std::string key = lower(name);
  for (auto it = headers.rbegin(); it != headers.rend(); ++it)
    if (it->first == key) return it->second;
  return std::nullopt;
}

std::string url_origin(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return {};
  const size_t host_end = url.find_first_of("/?#", scheme_end + 3);
  return lower(url.substr(0, host_end));
}

std::string url_quote(std::string_view text, bool keep_slash) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/'))
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

#if AUTOTRAIN_HAVE_CURL_H

HttpResponse perform(const HttpRequest& request) {
  const Curl& api = curl();
  HttpResponse response;
  Transfer transfer{&request, &response};
  CURL* easy = api.easy_init();
  if (!easy) throw HubError("libcurl could not start a transfer (out of memory?)");
  curl_slist* headers = nullptr;
  for (const auto& h : request.headers) headers = api.slist_append(headers, h.c_str());
  // No "Expect: 100-continue" round trip before a body (a second per upload with some servers).
  if (request.method == "POST" || request.method == "PUT") headers = api.slist_append(headers, "Expect:");
  UploadSource source;
  if (request.upload) {
    source.file = std::fopen(request.upload->path.c_str(), "rb");
    if (!source.file ||
        ::fseeko(source.file, static_cast<off_t>(request.upload->offset), SEEK_SET) != 0) {
      if (source.file) std::fclose(source.file);
      api.slist_free_all(headers);
      api.easy_cleanup(easy);
      throw HubError(fmt::format("cannot read {}: {}", request.upload->path, std::strerror(errno)));
    }
    source.left = request.upload->length;
  }
  char error_buffer[CURL_ERROR_SIZE] = {};
  api.easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  api.easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer);
  api.easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  if (request.method == "HEAD") {
    api.easy_setopt(easy, CURLOPT_NOBODY, 1L);
  } else if (request.upload) {
    api.easy_setopt(easy, CURLOPT_UPLOAD, 1L);  // a PUT
    api.easy_setopt(easy, CURLOPT_READFUNCTION, &on_read);
    api.easy_setopt(easy, CURLOPT_READDATA, &source);
    api.easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.upload->length));
  } else if (request.method == "POST" || request.method == "PUT") {
    api.easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
    api.easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    if (request.method == "PUT") api.easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "PUT");
  }
  api.easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  // URLs come from the server too (redirects, pages, upload targets): HTTP(S) only, never
  // file://, scp:// or the like.
#if CURL_AT_LEAST_VERSION(7, 85, 0)
  api.easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  api.easy_setopt(easy, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  api.easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  api.easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, 10L);
  if ((request.method == "GET" || request.method == "HEAD") && !request.sink) {
    // Metadata (listings, HEADs): a Hub that does not answer in 15 s is not going to.
    api.easy_setopt(easy, CURLOPT_TIMEOUT, 15L);
  } else {
    // A transfer that moves less than 1 byte/s for 30 s is stalled: fail it (a partial download
    // stays, and is resumed) rather than hang a batch job.
    api.easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    api.easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, 30L);
  }
  api.easy_setopt(easy, CURLOPT_HEADERFUNCTION, &on_header);
  api.easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);
  api.easy_setopt(easy, CURLOPT_WRITEFUNCTION, &on_body);
  api.easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  api.easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
  api.easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &on_progress);
  api.easy_setopt(easy, CURLOPT_XFERINFODATA, &transfer);
  const std::optional<std::string> ca = ca_bundle();
  if (ca) api.easy_setopt(easy, CURLOPT_CAINFO, ca->c_str());
  const CURLcode code = api.easy_perform(easy);
  char* redirect = nullptr;
  if (code == CURLE_OK && api.easy_getinfo(easy, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK && redirect)
    response.redirect_url = redirect;
  long status = 0;
  if (code == CURLE_OK && api.easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK) response.status = status;
  std::string reason = error_buffer[0] ? error_buffer : api.easy_strerror(code);
  api.slist_free_all(headers);
  api.easy_cleanup(easy);
  if (source.file) std::fclose(source.file);
  if (source.failed)
    throw HubError(fmt::format("cannot read {} while sending it: {}", request.upload->path, std::strerror(errno)));
  if (code != CURLE_OK && !transfer.sink_stopped && code != CURLE_ABORTED_BY_CALLBACK)
    throw NetworkError(fmt::format("{} {}: {}", request.method, shown_url(request.url), reason));
  if (code != CURLE_OK) response.status = -1;  // stopped by the caller's sink or progress
  return response;
}

#else

HttpResponse perform(const HttpRequest&) {
  throw HubError("this autotrain was built without libcurl's headers (libcurl4-openssl-dev), so it cannot download; "
                 "download with huggingface-cli and pass the cache or the folder");
}

#endif

}  // namespace autotrain::hub
