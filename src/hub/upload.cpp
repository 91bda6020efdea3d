// Uploads to the Hub: create_repo and upload_folder as huggingface_hub makes them, over the
// plain git-LFS transfer (basic, or multipart when the Hub asks for it).
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <fmt/format.h>

#include "autotrain/data/sha256.h"
#include "autotrain/hub/hub.h"
#include "autotrain/io/utf8.h"
#include "client.h"
#include "encoding.h"

namespace autotrain::hub {

namespace fs = std::filesystem;

namespace {

constexpr size_t kBatch = 256;  // files per preupload / LFS batch call, as huggingface_hub sends them

struct LocalFile {
  fs::path full;
  std::string path;  // in the repository, '/'-separated
  uint64_t size = 0;
  bool lfs = false;
  std::string oid;  // sha256 (LFS) or git blob id (regular), once known
};

std::string read_bytes(const fs::path& file, uint64_t limit = UINT64_MAX) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw HubError(fmt::format("cannot read {}", file.string()));
  std::string out;
  char buf[1 << 16];
  while (out.size() < limit) {
    in.read(buf, static_cast<std::streamsize>(std::min<uint64_t>(sizeof buf, limit - out.size())));
    if (in.gcount() <= 0) break;
    out.append(buf, static_cast<size_t>(in.gcount()));
  }
  return out;
}

// upload_folder's defaults: never a .git folder or huggingface_hub's local .cache/huggingface;
// and never autotrain's project lock.
bool always_ignored(const std::string& path) {
  const std::string wrapped = "/" + path + "/";
  return wrapped.find("/.git/") != std::string::npos || wrapped.find("/.cache/huggingface/") != std::string::npos ||
         wrapped.find("/.autotrain.lock/") != std::string::npos;
}

bool matches_any(const std::vector<std::string>& patterns, const std::string& path) {
  return std::any_of(patterns.begin(), patterns.end(), [&](std::string p) {
    if (!p.empty() && p.back() == '/') p += '*';
    return glob_match(p, path);
  });
}

std::vector<LocalFile> folder_files(const fs::path& folder, const UploadOptions& upload) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw HubError(fmt::format("{}: not a folder; give the folder to upload (a project folder after `train`)",
                               folder.string()));
  std::vector<LocalFile> out;
  for (auto it = fs::recursive_directory_iterator(folder, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;  // follows a link to a file; a linked folder is not entered
    LocalFile f;
    f.full = it->path();
    // The link's own name (a linked file goes up under it, as upload_folder sends it), never
    // where it points.
    f.path = it->path().lexically_relative(folder).generic_string();
    if (always_ignored(f.path)) continue;
    if (io::invalid_utf8_at(f.path) != std::string::npos)
      throw HubError(fmt::format("{}: its name is not UTF-8, which the Hub's paths must be; rename it (or --exclude it)",
                                 it->path().string()));
    if (!upload.include.empty() && !matches_any(upload.include, f.path)) continue;
    if (matches_any(upload.exclude, f.path)) continue;
    f.size = it->file_size(ec);
    out.push_back(std::move(f));
  }
  if (ec) throw HubError(fmt::format("cannot list {}: {}", folder.string(), ec.message()));
  std::sort(out.begin(), out.end(), [](const LocalFile& a, const LocalFile& b) { return a.path < b.path; });
  return out;
}

std::string repo_path_prefix(RepoType type) { return type == RepoType::dataset ? "datasets/" : ""; }

const nlohmann::json* find(const nlohmann::json& j, const char* key) {
  return j.is_object() && j.contains(key) ? &j[key] : nullptr;
}

// The git-LFS headers of an action, sent as the LFS specification asks (multipart's own keys
// are instructions, not headers).
std::vector<std::string> action_headers(const nlohmann::json& action) {
  std::vector<std::string> out;
  if (const auto* h = find(action, "header"); h && h->is_object())
    for (const auto& [k, v] : h->items())
      if (k != "chunk_size" && !std::all_of(k.begin(), k.end(), ::isdigit) && v.is_string())
        out.push_back(k + ": " + v.get<std::string>());
  return out;
}

// PUTs [offset, offset + length) of the file; returns the response (its ETag for a part).
HttpResponse put_slice(Client& client, const std::string& url, const LocalFile& f, uint64_t offset, uint64_t length,
                       std::vector<std::string> headers, uint64_t& sent) {
  for (int attempt = 0;; ++attempt) {
    HttpRequest put;
    put.method = "PUT";
    put.url = url;
    put.headers = headers;
    put.upload = HttpRequest::FileSlice{f.full.string(), offset, length};
    std::string error;
    HttpResponse r;
    try {
      r = client.request(put, /*follow_all=*/true);
    } catch (const NetworkError& e) {
      error = e.what();
    }
    if (error.empty() && r.status >= 200 && r.status < 300) {
      sent += length;
      return r;
    }
    if (attempt + 1 < kAttempts && (!error.empty() || retryable(r.status))) {
      pause_before_retry(attempt);
      continue;
    }
    if (!error.empty()) throw HubError(fmt::format("uploading {}: {}", f.path, error));
    throw HubError(fmt::format("uploading {}: the storage answered HTTP {} ({})", f.path, r.status,
                               hub_message(r).empty() ? r.body.substr(0, 200) : hub_message(r)));
  }
}

void upload_lfs_object(Client& client, const LocalFile& f, const nlohmann::json& actions, uint64_t& sent) {
  const nlohmann::json& up = actions.at("upload");
  const std::string href = up.at("href").get<std::string>();
  const auto* header = find(up, "header");
  if (header && header->is_object() && header->contains("chunk_size")) {
    // Multipart: the header lists one URL per part ("1", "2", ...); each PUT's ETag goes into the
    // completion call.
    const auto& chunk = (*header)["chunk_size"];
    const uint64_t chunk_size = chunk.is_string() ? std::stoull(chunk.get<std::string>()) : chunk.get<uint64_t>();
    if (chunk_size == 0) throw HubError(fmt::format("uploading {}: the Hub asked for parts of 0 bytes", f.path));
    const uint64_t parts = (f.size + chunk_size - 1) / chunk_size;
    nlohmann::json done = nlohmann::json::array();
    for (uint64_t i = 1; i <= parts; ++i) {
      const auto* part_url = find(*header, std::to_string(i).c_str());
      if (!part_url || !part_url->is_string())
        throw HubError(fmt::format("uploading {}: the Hub gave no URL for part {} of {}", f.path, i, parts));
      const uint64_t offset = (i - 1) * chunk_size;
      HttpResponse r = put_slice(client, part_url->get<std::string>(), f, offset, std::min(chunk_size, f.size - offset),
                                 {}, sent);
      const std::string etag = r.header("etag").value_or("");
      if (etag.empty()) throw HubError(fmt::format("uploading {}: the storage gave no ETag for part {}", f.path, i));
      done.push_back({{"partNumber", i}, {"etag", etag}});
    }
    client.post_json(href, nlohmann::json{{"oid", f.oid}, {"parts", done}}.dump(),
                     {"Accept: application/vnd.git-lfs+json", "Content-Type: application/vnd.git-lfs+json"},
                     fmt::format("completing the upload of {}", f.path), "", RepoType::model);
  } else {
    put_slice(client, href, f, 0, f.size, action_headers(up), sent);
  }
  if (const auto* verify = find(actions, "verify"); verify && verify->is_object())
    client.post_json(verify->at("href").get<std::string>(), nlohmann::json{{"oid", f.oid}, {"size", f.size}}.dump(),
                     {"Accept: application/vnd.git-lfs+json", "Content-Type: application/vnd.git-lfs+json"},
                     fmt::format("verifying the upload of {}", f.path), "", RepoType::model);
}

}  // namespace

std::vector<std::string> files_to_upload(const fs::path& folder, const UploadOptions& upload) {
  std::vector<std::string> out;
  for (const auto& f : folder_files(folder, upload)) out.push_back(f.path);
  if (out.empty()) throw HubError(fmt::format("{}: no file to upload (after the include/exclude patterns)", folder.string()));
  return out;
}

Account whoami(const HubOptions& options, bool retry) {
  if (!options.token)
    throw HubError("no Hugging Face token: run `autotrain setup --token -` and paste a token with the \"write\" role, or "
                   "set HF_TOKEN");
  Client client(options);
  HttpRequest get;
  get.url = options.endpoint + "/api/whoami-v2";
  get.retry = retry;
  HttpResponse r = client.request(get);
  if (r.status == 401)
    throw HubError(fmt::format("the Hugging Face token is not valid on {} (HTTP 401); make a new one at "
                               "https://huggingface.co/settings/tokens and store it with `autotrain setup --token -`",
                               options.endpoint));
  if (r.status < 200 || r.status >= 300) fail(r, "checking the token", "", RepoType::model, options);
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string())
    throw HubError(fmt::format("{}/api/whoami-v2 did not say whose the token is; is HF_ENDPOINT a Hugging Face Hub?",
                               options.endpoint));
  Account a;
  a.name = j["name"].get<std::string>();
  if (j.contains("orgs") && j["orgs"].is_array())
    for (const auto& o : j["orgs"])
      if (o.is_object() && o.contains("name") && o["name"].is_string()) a.orgs.push_back(o["name"].get<std::string>());
  if (const auto* auth = find(j, "auth"))
    if (const auto* token = find(*auth, "accessToken"))
      if (const auto* role = find(*token, "role"); role && role->is_string()) a.token_role = role->get<std::string>();
  return a;
}

std::string create_repo(std::string_view repo_id, RepoType type, bool private_repo, const HubOptions& options) {
  if (!model::looks_like_repo_id(repo_id) || repo_id.find('/') == std::string_view::npos)
    throw HubError(fmt::format("'{}' is not a repository id: write it as USER/NAME (or ORG/NAME)", repo_id));
  Client client(options);
  const size_t slash = repo_id.find('/');
  nlohmann::json body = {{"name", std::string(repo_id.substr(slash + 1))},
                         {"organization", std::string(repo_id.substr(0, slash))},
                         {"visibility", private_repo ? "private" : "public"}};
  if (type == RepoType::dataset) body["type"] = "dataset";
  HttpRequest post;
  post.method = "POST";
  post.url = options.endpoint + "/api/repos/create";
  post.headers = {"Content-Type: application/json"};
  post.body = body.dump();
  post.retry = false;
  HttpResponse r = client.request(post);
  const std::string url = fmt::format("{}/{}{}", options.endpoint, repo_path_prefix(type), repo_id);
  if ((r.status >= 200 && r.status < 300) || r.status == 409) return url;  // 409: it exists already
  if (r.status == 401 || r.status == 403) {
    // No right to create it there; it may exist already and be writable (huggingface_hub asks too).
    HttpRequest info;
    info.url = api_base(options, type, repo_id);
    if (HttpResponse i = client.request(info); i.status >= 200 && i.status < 300) return url;
  }
  fail(r, fmt::format("creating {} {}", type_word(type), repo_id), repo_id, type, options, /*writing=*/true);
}

bool create_branch_if_missing(std::string_view repo_id, RepoType type, std::string_view branch,
                              const HubOptions& options) {
  Client client(options);
  const std::string base = api_base(options, type, repo_id);
  const std::string quoted = url_quote(branch, false);
  HttpRequest info;
  info.url = fmt::format("{}/revision/{}", base, quoted);
  HttpResponse r = client.request(info);
  if (r.status >= 200 && r.status < 300) return false;
  const std::string what = fmt::format("creating branch {} of {} {}", branch, type_word(type), repo_id);
  if (r.status != 404 || r.header("x-error-code").value_or("") != "RevisionNotFound")
    fail(r, fmt::format("looking for revision {} of {} {}", branch, type_word(type), repo_id), repo_id, type, options);
  HttpRequest post;
  post.method = "POST";
  post.url = fmt::format("{}/branch/{}", base, quoted);
  post.headers = {"Content-Type: application/json"};
  post.body = "{}";
  post.retry = false;
  HttpResponse created = client.request(post);
  if (created.status >= 200 && created.status < 300) return true;
  if (created.status == 409) return false;  // made meanwhile (another upload)
  fail(created, what, repo_id, type, options, /*writing=*/true);
}

UploadSummary upload_folder(const fs::path& folder, std::string_view repo_id, RepoType type, const UploadOptions& upload,
                            const HubOptions& options) {
  if (!options.token)
    throw HubError("uploading needs a Hugging Face token with the \"write\" role: run `autotrain setup --token -` and paste "
                   "it, or set HF_TOKEN");
  if (upload.commit_message.empty()) throw HubError("the commit message is empty: give one");
  Client client(options);
  std::vector<LocalFile> files = folder_files(folder, upload);
  UploadSummary summary;
  for (const auto& f : files) summary.files.push_back(f.path);
  if (files.empty()) throw HubError(fmt::format("{}: no file to upload (after the include/exclude patterns)", folder.string()));
  const std::string what = fmt::format("uploading to {} {}", type_word(type), repo_id);
  const std::string rev = url_quote(upload.revision, false);

  // 1. The Hub says which files go through LFS, which it ignores, and what it holds already.
  std::vector<LocalFile*> changed;
  for (size_t start = 0; start < files.size(); start += kBatch) {
    nlohmann::json batch = nlohmann::json::array();
    const size_t end = std::min(files.size(), start + kBatch);
    for (size_t i = start; i < end; ++i)
      batch.push_back({{"path", files[i].path}, {"sample", base64(read_bytes(files[i].full, 512))}, {"size", files[i].size}});
    const auto answer = client.post_json(fmt::format("{}/preupload/{}", api_base(options, type, repo_id), rev),
                                         nlohmann::json{{"files", batch}}.dump(), {}, what, repo_id, type);
    const auto* listed = find(answer, "files");
    if (!listed || !listed->is_array())
      throw HubError(fmt::format("{}: the Hub's preupload answer lists no files; is HF_ENDPOINT a Hugging Face Hub?", what));
    for (size_t i = start; i < end; ++i) {
      LocalFile& f = files[i];
      const auto entry = std::find_if(listed->begin(), listed->end(), [&](const nlohmann::json& e) {
        return e.is_object() && e.value("path", "") == f.path;
      });
      if (entry == listed->end()) throw HubError(fmt::format("{}: the Hub said nothing about {}", what, f.path));
      if (entry->value("shouldIgnore", false)) continue;
      f.lfs = entry->value("uploadMode", "regular") == "lfs" && f.size > 0;
      f.oid = f.lfs ? data::file_sha256(f.full) : git_blob_id(read_bytes(f.full));
      const auto* remote = find(*entry, "oid");
      if (remote && remote->is_string() && remote->get<std::string>() == f.oid) continue;  // there as it is
      changed.push_back(&f);
    }
  }
  summary.changed = changed.size();
  if (changed.empty()) return summary;  // nothing to commit, as huggingface_hub then makes none

  // 2. LFS objects the Hub does not have yet go where its batch API says.
  std::vector<LocalFile*> lfs;
  for (auto* f : changed)
    if (f->lfs) lfs.push_back(f);
  for (size_t start = 0; start < lfs.size(); start += kBatch) {
    nlohmann::json objects = nlohmann::json::array();
    const size_t end = std::min(lfs.size(), start + kBatch);
    for (size_t i = start; i < end; ++i) objects.push_back({{"oid", lfs[i]->oid}, {"size", lfs[i]->size}});
    const auto answer = client.post_json(
        fmt::format("{}/{}{}.git/info/lfs/objects/batch", options.endpoint, repo_path_prefix(type), repo_id),
        nlohmann::json{{"operation", "upload"},
                       {"transfers", {"basic", "multipart"}},
                       {"objects", objects},
                       {"hash_algo", "sha256"},
                       {"ref", {{"name", upload.revision}}}}
            .dump(),
        {"Accept: application/vnd.git-lfs+json", "Content-Type: application/vnd.git-lfs+json"}, what, repo_id, type);
    const auto* answered = find(answer, "objects");
    if (!answered || !answered->is_array())
      throw HubError(fmt::format("{}: the Hub's LFS answer lists no objects", what));
    for (size_t i = start; i < end; ++i) {
      LocalFile& f = *lfs[i];
      const auto o = std::find_if(answered->begin(), answered->end(), [&](const nlohmann::json& e) {
        return e.is_object() && e.value("oid", "") == f.oid;
      });
      if (o == answered->end()) throw HubError(fmt::format("{}: the Hub's LFS answer leaves out {}", what, f.path));
      if (const auto* error = find(*o, "error"))
        throw HubError(fmt::format("{}: the Hub refused {}: {}", what, f.path, error->dump()));
      const auto* actions = find(*o, "actions");
      if (!actions || !actions->is_object() || !actions->contains("upload")) continue;  // stored already
      if (options.progress) fmt::print(stderr, "uploading {} ({})\n", f.path, human_bytes(f.size));
      upload_lfs_object(client, f, *actions, summary.bytes_uploaded);
      ++summary.lfs_uploaded;
    }
  }

  // 3. One commit names them all: small files inline (base64), LFS files by their oid.
  std::string ndjson = nlohmann::json{{"key", "header"},
                                      {"value", {{"summary", upload.commit_message}, {"description", ""}}}}
                           .dump() +
                       "\n";
  for (const auto* f : changed) {
    if (f->lfs) {
      ndjson += nlohmann::json{{"key", "lfsFile"},
                               {"value", {{"path", f->path}, {"algo", "sha256"}, {"oid", f->oid}, {"size", f->size}}}}
                    .dump() +
                "\n";
    } else {
      ndjson += nlohmann::json{{"key", "file"},
                               {"value", {{"content", base64(read_bytes(f->full))}, {"path", f->path}, {"encoding", "base64"}}}}
                    .dump() +
                "\n";
      summary.bytes_uploaded += f->size;
    }
  }
  HttpRequest commit;
  commit.method = "POST";
  commit.url = fmt::format("{}/commit/{}", api_base(options, type, repo_id), rev);
  commit.headers = {"Content-Type: application/x-ndjson"};
  commit.body = std::move(ndjson);
  commit.retry = false;
  HttpResponse r = client.request(commit);
  if (r.status < 200 || r.status >= 300) fail(r, what, repo_id, type, options, /*writing=*/true);
  const auto answer = nlohmann::json::parse(r.body, nullptr, false);
  summary.committed = true;
  summary.commit_oid = answer.is_object() ? answer.value("commitOid", "") : "";
  summary.commit_url = answer.is_object() ? answer.value("commitUrl", "") : "";
  return summary;
}

}  // namespace autotrain::hub
