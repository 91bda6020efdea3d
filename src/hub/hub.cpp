#include "autotrain/hub/hub.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "autotrain/data/sha256.h"
#include "autotrain/io/atomic_file.h"
#include "autotrain/io/hf_token.h"
#include "autotrain/io/temp_paths.h"
#include "client.h"
#include "encoding.h"

namespace autotrain::hub {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool truthy(const std::optional<std::string>& v) {
  if (!v) return false;
  const std::string s = lower(*v);
  return s == "1" || s == "on" || s == "yes" || s == "true";
}

bool is_hex(std::string_view s, size_t length) {
  return s.size() == length &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f'); });
}

// An ETag as huggingface_hub normalises it (etag.lstrip("W/").strip('"')), so blob names agree.
std::string normalize_etag(std::string_view etag) {
  while (!etag.empty() && (etag.front() == 'W' || etag.front() == '/')) etag.remove_prefix(1);
  while (!etag.empty() && etag.front() == '"') etag.remove_prefix(1);
  while (!etag.empty() && etag.back() == '"') etag.remove_suffix(1);
  return std::string(etag);
}

// Names that come from the server become file names: nothing that climbs out of the cache.
bool safe_blob_name(std::string_view name) {
  return !name.empty() && name.front() != '.' &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
         });
}

std::string io_read(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool safe_repo_path(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

std::string human_bytes(uint64_t n) {
  if (n >= (1ull << 30)) return fmt::format("{:.2f} GB", n / 1e9);
  if (n >= (1ull << 20)) return fmt::format("{:.1f} MB", n / 1e6);
  if (n >= 1000) return fmt::format("{:.1f} kB", n / 1e3);
  return fmt::format("{} B", n);
}

namespace {

// An exclusive lock on a file (huggingface_hub's .locks/<repo>/<etag>.lock, flock as filelock
// takes it): two processes fetching the same blob take turns, the second finds it done.
class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    fs::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0664);
    if (fd_ < 0) throw HubError(fmt::format("cannot create the lock file {}: {}", path.string(), std::strerror(errno)));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      ::close(fd_);
      throw HubError(fmt::format("cannot lock {}: {}", path.string(), std::strerror(errno)));
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// A progress line on a terminal, redrawn at most 4 times a second.
class Progress {
 public:
  Progress(bool live, std::string name, uint64_t total) : live_(live), name_(std::move(name)), total_(total) {}
  void update(uint64_t now) {
    if (!live_) return;
    const auto t = std::chrono::steady_clock::now();
    if (t - last_ < std::chrono::milliseconds(250) && now < total_) return;
    last_ = t;
    const double seconds = std::chrono::duration<double>(t - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(now - first_) / seconds : 0;
    fmt::print(stderr, "\r  {}  {:>3}%  {} / {}  {}/s   ", name_, total_ ? now * 100 / total_ : 100, human_bytes(now),
               human_bytes(total_), human_bytes(static_cast<uint64_t>(rate)));
    std::fflush(stderr);
    drawn_ = true;
  }
  void start_at(uint64_t offset) { first_ = offset; }
  ~Progress() {
    if (drawn_) fmt::print(stderr, "\n");
  }

 private:
  bool live_;
  std::string name_;
  uint64_t total_;
  uint64_t first_ = 0;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
};

struct FileMetadata {
  std::string commit;
  std::string etag;
  uint64_t size = 0;
  std::string url;  // where the bytes are: the CDN's URL, or the resolve URL itself
};

FileMetadata head_file(Client& client, const RepoListing& listing, const std::string& path) {
  const HubOptions& o = client.options();
  const std::string url = resolve_url(o, listing.type, listing.repo_id, listing.commit, path);
  const std::string what = fmt::format("{} of {} {}", path, type_word(listing.type), listing.repo_id);
  HttpRequest head;
  head.method = "HEAD";
  head.url = url;
  head.headers = {"Accept-Encoding: identity"};
  HttpResponse r = client.request(head);
  if (r.status >= 400 || r.status < 200) fail(r, what, listing.repo_id, listing.type, o);
  FileMetadata m;
  m.commit = r.header("x-repo-commit").value_or("");
  m.etag = normalize_etag(r.header("x-linked-etag").value_or(r.header("etag").value_or("")));
  const bool redirect = r.status >= 300 && r.status < 400;
  const std::string size = r.header("x-linked-size").value_or(redirect ? "" : r.header("content-length").value_or(""));
  if (m.commit.empty() || m.etag.empty() || size.empty())
    throw HubError(fmt::format("{}: the answer from {} lacks {}; is HF_ENDPOINT ({}) a Hugging Face Hub (or a proxy "
                               "that drops headers)?",
                               what, url, m.commit.empty() ? "X-Repo-Commit" : m.etag.empty() ? "an ETag" : "the size",
                               o.endpoint));
  if (!safe_blob_name(m.etag))
    throw HubError(fmt::format("{}: the server gave the ETag '{}', which cannot name a blob", what, m.etag));
  m.size = std::strtoull(size.c_str(), nullptr, 10);
  m.url = redirect ? r.redirect_url : url;
  return m;
}

// What a blob's bytes must hash to: the SHA-256 of an LFS file (its ETag), or git's blob id of
// a small one (the listing's oid, which is its ETag too).
struct Expected {
  std::optional<std::string> sha256;
  std::optional<std::string> git_blob;
};

std::optional<std::string> content_mismatch(const fs::path& file, const Expected& expected) {
  if (expected.sha256) {
    const std::string got = data::file_sha256(file);
    if (got != *expected.sha256) return fmt::format("SHA-256 {}, not {}", got, *expected.sha256);
  } else if (expected.git_blob) {
    const std::string got = git_blob_id(io_read(file));
    if (got != *expected.git_blob) return fmt::format("git blob id {}, not {}", got, *expected.git_blob);
  }
  return std::nullopt;
}

// Streams `m.url` into `partial`, resuming what an interrupted run left there (a Range request;
// a server that answers with the whole file instead starts it over). The bytes are checked
// against the size and the content's hash before the caller renames them into the cache.
void fetch_blob(Client& client, const RepoListing& listing, const FileMetadata& m, const fs::path& partial,
                const std::string& path, const Expected& expected) {
  const HubOptions& o = client.options();
  bool resumed_any = false;
  for (int attempt = 0;; ++attempt) {
    std::error_code ec;
    uint64_t have = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
    if (ec || have > m.size) have = 0;
    resumed_any = resumed_any || have > 0;
    std::string network_error;
    HttpResponse resp;
    if (have < m.size || m.size == 0) {
      std::FILE* out = std::fopen(partial.c_str(), have ? "ab" : "wb");
      if (!out) throw HubError(fmt::format("cannot write {}: {}", partial.string(), std::strerror(errno)));
      Progress progress(o.progress, path, m.size);
      progress.start_at(have);
      bool write_failed = false, too_long = false, bad_range = false;
      HttpRequest r;
      r.url = m.url;
      if (have) r.headers.push_back(fmt::format("Range: bytes={}-", have));
      uint64_t written = have;
      r.on_headers = [&](const HttpResponse& h) {
        if (have && h.status == 200) {  // the Range was ignored: the whole file comes, from byte 0
          if (std::fflush(out) != 0 || ::ftruncate(::fileno(out), 0) != 0) return !(write_failed = true);
          std::rewind(out);
          written = 0;
        } else if (have && h.status == 206) {
          const std::string range = h.header("content-range").value_or("");
          if (range.rfind(fmt::format("bytes {}-", have), 0) != 0) return !(bad_range = true);
        }
        return true;
      };
      r.sink = [&](std::string_view chunk) {
        if (written + chunk.size() > m.size) return !(too_long = true);
        if (std::fwrite(chunk.data(), 1, chunk.size(), out) != chunk.size()) return !(write_failed = true);
        written += chunk.size();
        return true;
      };
      r.progress = [&](uint64_t, uint64_t) {
        progress.update(written);
        return true;
      };
      try {
        resp = client.request(r, /*follow_all=*/true);
      } catch (const NetworkError& e) {
        network_error = e.what();
      }
      const int closed = std::fclose(out);
      if (write_failed || closed != 0)
        throw HubError(fmt::format("cannot write {} ({}): is the disk full? Free space in {} or point HF_HOME elsewhere",
                                   partial.string(), std::strerror(errno), o.cache.string()));
      if (too_long || bad_range) {
        fs::remove(partial, ec);
        throw HubError(fmt::format("{}: the server sent {} than the {} announced for it; run again (if it happens again, "
                                   "the endpoint or a proxy on the way is broken)",
                                   path, too_long ? "more bytes" : "another part", human_bytes(m.size)));
      }
      if (network_error.empty() && resp.status == 416) {  // what is there is not a prefix of this blob
        fs::remove(partial, ec);
        if (attempt + 1 < kAttempts) continue;
      }
      if (network_error.empty() && retryable(resp.status) && attempt + 1 < kAttempts) {
        pause_before_retry(attempt);
        continue;
      }
      if (network_error.empty() && resp.status >= 400)
        fail(resp, fmt::format("{} of {} {}", path, type_word(listing.type), listing.repo_id), listing.repo_id,
             listing.type, o);
    }
    const uint64_t size = fs::file_size(partial, ec);
    if (size == m.size) {
      const auto mismatch = content_mismatch(partial, expected);
      if (!mismatch) return;
      fs::remove(partial, ec);
      // A resumed file may hold a bad start (another writer, a server that changed it): once more
      // from scratch; bytes that arrive wrong in one go are the transfer's fault.
      if (resumed_any && attempt + 1 < kAttempts) {
        resumed_any = false;
        continue;
      }
      throw HubError(fmt::format("{}: the downloaded bytes have {}: corrupted in transfer; run again", path, *mismatch));
    }
    if (attempt + 1 >= kAttempts)
      throw HubError(fmt::format("{}: the download stopped at {} of {} ({}); run again to resume it", path,
                                 human_bytes(size), human_bytes(m.size),
                                 network_error.empty() ? "the connection closed early" : network_error));
    pause_before_retry(attempt);
  }
}

// A relative link, as huggingface_hub makes them (../../blobs/<etag> from the snapshot's root),
// made under a temporary name and renamed, so a reader never sees a half-made one.
void link_pointer(const fs::path& blob, const fs::path& pointer) {
  fs::create_directories(pointer.parent_path());
  const fs::path target = blob.lexically_relative(pointer.parent_path());
  const fs::path temp = io::temporary_path_for(pointer);  // random: processes on several hosts share caches
  std::error_code ec;
  fs::create_symlink(target, temp, ec);
  if (ec) throw HubError(fmt::format("cannot make the link {}: {}", pointer.string(), ec.message()));
  fs::rename(temp, pointer, ec);
  if (ec) throw HubError(fmt::format("cannot make the link {}: {}", pointer.string(), ec.message()));
}

void write_cachedir_tag(const fs::path& cache) {
  const fs::path tag = cache / "CACHEDIR.TAG";
  std::error_code ec;
  if (fs::exists(tag, ec)) return;
  try {
    io::write_file_atomic(tag,
                          "Signature: 8a477f597d28d172789f06886806bc55\n"
                          "# This file is a cache directory tag created by huggingface_hub.\n"
                          "# For information about cache directory tags, see:\n"
                          "#\thttps://bford.info/cachedir/\n");
  } catch (const std::exception&) {
    // Only a hint to backup tools.
  }
}

// trees/<commit>.json: the whole listing, as huggingface_hub writes it before downloading; its
// offline snapshot_download checks a snapshot against it.
void write_tree_cache(const fs::path& repo_dir, const RepoListing& listing) {
  const fs::path file = repo_dir / "trees" / (listing.commit + ".json");
  std::error_code ec;
  if (fs::exists(file, ec)) return;
  nlohmann::json files = nlohmann::json::object();
  for (const auto& f : listing.files) {
    nlohmann::json e = {{"size", f.size}, {"blob_id", f.blob_id}};
    if (f.lfs_sha256) {
      e["lfs_sha256"] = *f.lfs_sha256;
      e["lfs_size"] = f.size;
    }
    files[f.path] = e;
  }
  try {
    fs::create_directories(file.parent_path());
    io::write_file_atomic(file, nlohmann::json{{"format_version", 1}, {"files", files}}.dump(1), 0600);
  } catch (const std::exception&) {
    // A listing that cannot be kept (a read-only cache) only costs huggingface_hub a request.
  }
}

}  // namespace

bool offline(const model::EnvLookup& env) {
  if (auto v = env("HF_HUB_OFFLINE")) return truthy(v);
  return truthy(env("TRANSFORMERS_OFFLINE"));
}

HubOptions options_from_env(const model::EnvLookup& env, const std::optional<std::string>& token) {
  HubOptions o;
  if (auto e = env("HF_ENDPOINT")) {
    o.endpoint = *e;
    while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
    if (o.endpoint.rfind("https://", 0) != 0 && o.endpoint.rfind("http://", 0) != 0)
      throw HubError(fmt::format("HF_ENDPOINT={} is not an http(s) URL; unset it for https://huggingface.co, or give "
                                 "the mirror's URL",
                                 o.endpoint));
  }
  o.cache = model::hf_hub_cache(env);
  auto usable = [](const std::optional<std::string>& t) -> std::optional<std::string> {
    if (!t) return std::nullopt;
    std::string clean = io::trim_token(*t);
    if (clean.empty() || clean == "hf_XXX") return std::nullopt;
    if (!io::plausible_token(clean)) {
      fmt::print(stderr, "warning: a Hugging Face token ({}) has blanks or control characters inside, so it is not "
                 "used; store it again with `autotrain setup --token -`\n",
                 io::mask_token(clean));
      return std::nullopt;
    }
    return clean;
  };
  o.token = usable(token);
  if (!o.token) o.token = usable(env("HF_TOKEN"));
  if (!o.token) o.token = usable(env("HUGGING_FACE_HUB_TOKEN"));
  if (!o.token) {
    config::Environment vars;
    for (const char* name : {"HF_TOKEN_PATH", "HF_HOME", "XDG_CACHE_HOME", "HOME"})
      if (auto v = env(name)) vars[name] = *v;
    std::ifstream in(io::hf_token_path(vars));
    std::string line;
    if (in && std::getline(in, line)) o.token = usable(line);
  }
  o.progress = ::isatty(STDERR_FILENO) == 1;
  return o;
}

namespace {

// Code points, as Python's fnmatch sees a str (a byte that is not UTF-8 stands for itself, as
// surrogateescape has it): '?' and classes take one character, not one byte.
std::u32string code_points(std::string_view s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (ok) {
      out += cp;
      i += len;
    } else {
      out += static_cast<char32_t>(0xDC00 + c);
      ++i;
    }
  }
  return out;
}

}  // namespace

bool glob_match(std::string_view pattern_text, std::string_view path_text) {
  const std::u32string pattern = code_points(pattern_text), path = code_points(path_text);
  // Iterative wildcard matching with one backtrack point for the last '*'.
  size_t p = 0, s = 0, star = std::u32string::npos, mark = 0;
  auto class_match = [&](size_t& pi, char32_t c) -> std::optional<bool> {
    // pattern[pi] == '['; nullopt for an unclosed class (then '[' is literal). As fnmatch: '!'
    // negates, a ']' first is a member, a range whose start is past its end matches nothing.
    size_t i = pi + 1;
    const bool negate = i < pattern.size() && pattern[i] == U'!';
    if (negate) ++i;
    bool matched = false;
    bool first = true;
    for (; i < pattern.size() && (first || pattern[i] != U']'); ++i, first = false) {
      if (i + 2 < pattern.size() && pattern[i + 1] == U'-' && pattern[i + 2] != U']') {
        matched = matched || (c >= pattern[i] && c <= pattern[i + 2]);
        i += 2;
      } else {
        matched = matched || c == pattern[i];
      }
    }
    if (i >= pattern.size()) return std::nullopt;
    pi = i + 1;
    return matched != negate;
  };
  while (s < path.size()) {
    if (p < pattern.size() && pattern[p] == U'*') {
      star = p++;
      mark = s;
      continue;
    }
    if (p < pattern.size()) {
      if (pattern[p] == U'?') {
        ++p;
        ++s;
        continue;
      }
      if (pattern[p] == U'[') {
        size_t next = p;
        if (auto m = class_match(next, path[s])) {
          if (*m) {
            p = next;
            ++s;
            continue;
          }
        } else if (path[s] == U'[') {
          ++p;
          ++s;
          continue;
        }
      } else if (pattern[p] == path[s]) {
        ++p;
        ++s;
        continue;
      }
    }
    if (star == std::u32string::npos) return false;
    p = star + 1;
    s = ++mark;
  }
  while (p < pattern.size() && pattern[p] == U'*') ++p;
  return p == pattern.size();
}

std::vector<std::string> select_files(const RepoListing& listing, const std::vector<std::string>& patterns) {
  std::vector<std::string> out;
  for (const auto& f : listing.files)
    for (std::string pattern : patterns) {
      if (!pattern.empty() && pattern.back() == '/') pattern += '*';
      if (glob_match(pattern, f.path)) {
        out.push_back(f.path);
        break;
      }
    }
  return out;
}

std::vector<std::string> tokenizer_patterns() {
  // No config.json: a snapshot holding one is taken for a whole model by the next `train`.
  return {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"};
}

std::vector<std::string> dataset_patterns() {
  std::vector<std::string> out;
  for (const char* ext : {"jsonl", "json", "csv", "txt"}) {
    out.push_back(fmt::format("*.{}", ext));
    for (const char* z : {"gz", "zst", "bz2", "xz"}) out.push_back(fmt::format("*.{}.{}", ext, z));
  }
  for (const char* ext : {"parquet", "arrow", "feather"}) out.push_back(fmt::format("*.{}", ext));
  return out;
}

std::vector<std::string> files_to_fetch(const RepoListing& listing, Use use) {
  auto has = [&](const char* pattern) { return !select_files(listing, {pattern}).empty(); };
  std::vector<std::string> patterns = use == Use::dataset  ? dataset_patterns()
                                     : use == Use::config ? std::vector<std::string>{"*.json", "tokenizer.model"}
                                                          : tokenizer_patterns();
  if (use == Use::model) {
    // The weights transformers would load: model.safetensors, or the shards its index names
    // (save_pretrained's names); not a consolidated.safetensors or *.fp16.safetensors copy beside them.
    patterns = {"*.json", "tokenizer.model"};
    if (has("model.safetensors")) {
      patterns.push_back("model.safetensors");
    } else if (has("model.safetensors.index.json")) {
      patterns.push_back("model-*-of-*.safetensors");
    } else if (has("*.bin") || has("*.pt") || has("*.pth")) {
      throw HubError(fmt::format("model {} has its weights only as PyTorch pickles (*.bin), which autotrain does not "
                                 "load (they can run code); use a revision with *.safetensors (the Hub's "
                                 "\"Adding `safetensors` variant\" pull requests: `autotrain download {} --revision "
                                 "refs/pr/N`), or convert them with transformers' save_pretrained(safe_serialization=True)",
                                 listing.repo_id, listing.repo_id));
    } else {
      throw HubError(fmt::format("model {} has no model.safetensors (nor model.safetensors.index.json with its shards) at "
                                 "commit {}: it is not a transformers model autotrain can load",
                                 listing.repo_id, listing.commit.substr(0, 12)));
    }
  }
  std::vector<std::string> files = select_files(listing, patterns);
  // A model's own files are at the top (subfolders hold other formats: onnx/, coreml/, ...).
  if (use != Use::dataset)
    files.erase(std::remove_if(files.begin(), files.end(), [](const std::string& f) { return f.find('/') != std::string::npos; }),
                files.end());
  if (files.empty()) {
    std::vector<std::string> some;
    for (const auto& f : listing.files)
      if (some.size() < 12) some.push_back(f.path);
    throw HubError(fmt::format("{} {} has no {} files at commit {} (it has: {}{})", type_word(listing.type), listing.repo_id,
                               use == Use::dataset ? ".jsonl/.json/.csv/.txt/.parquet/.arrow" : "tokenizer",
                               listing.commit.substr(0, 12), fmt::join(some, ", "),
                               listing.files.size() > some.size() ? ", ..." : ""));
  }
  return files;
}

std::pair<size_t, uint64_t> missing_from_cache(const RepoListing& listing, const std::vector<std::string>& files,
                                               const HubOptions& options) {
  const fs::path snapshot =
      options.cache / model::hub_repo_folder(listing.repo_id, listing.type) / "snapshots" / listing.commit;
  size_t count = 0;
  uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& f : listing.files)
    if (std::find(files.begin(), files.end(), f.path) != files.end() && !fs::exists(snapshot / f.path, ec)) {
      ++count;
      bytes += f.size;
    }
  return {count, bytes};
}

std::optional<fs::path> cached_snapshot(std::string_view repo_id, RepoType type, std::string_view revision,
                                        const HubOptions& options) {
  const fs::path snapshot = model::hub_snapshot_path(options.cache / model::hub_repo_folder(repo_id, type), revision);
  std::error_code ec;
  if (snapshot.empty() || !fs::is_directory(snapshot, ec)) return std::nullopt;
  return snapshot;
}

RepoListing list_repo(std::string_view repo_id, RepoType type, std::string_view revision, const HubOptions& options) {
  if (!model::looks_like_repo_id(repo_id))
    throw HubError(fmt::format("'{}' is not a Hugging Face repository id (org/name)", repo_id));
  Client client(options);
  RepoListing listing{std::string(repo_id), type, std::string(revision), {}, {}};
  if (is_hex(revision, 40)) {
    listing.commit = std::string(revision);
  } else {
    const auto info = client.get_json(fmt::format("{}/revision/{}", api_base(options, type, repo_id), url_quote(revision, false)),
                                      fmt::format("{} {} at revision {}", type_word(type), repo_id, revision), repo_id, type);
    if (!info.is_object() || !info.contains("sha") || !info["sha"].is_string() || !is_hex(info["sha"].get<std::string>(), 40))
      throw HubError(fmt::format("{} {}: the Hub's answer names no commit for revision {}", type_word(type), repo_id, revision));
    listing.commit = info["sha"].get<std::string>();
  }
  std::string url = fmt::format("{}/tree/{}?recursive=true&expand=false", api_base(options, type, repo_id), listing.commit);
  for (int page = 0; !url.empty(); ++page) {
    if (page > 10000) throw HubError(fmt::format("{} {}: the file listing does not end", type_word(type), repo_id));
    std::string next;
    const auto entries = client.get_json(url, fmt::format("the files of {} {}", type_word(type), repo_id), repo_id, type, &next);
    if (!entries.is_array())
      throw HubError(fmt::format("{} {}: the Hub's file listing is not a list", type_word(type), repo_id));
    for (const auto& e : entries) {
      if (!e.is_object() || e.value("type", "") != "file") continue;
      RepoFile f;
      try {
        f.path = e.at("path").get<std::string>();
        f.size = e.at("size").get<uint64_t>();
        f.blob_id = e.value("oid", "");
        if (e.contains("lfs") && e["lfs"].is_object()) f.lfs_sha256 = e["lfs"].at("oid").get<std::string>();
      } catch (const std::exception& ex) {
        throw HubError(fmt::format("{} {}: a file in the Hub's listing is malformed ({})", type_word(type), repo_id, ex.what()));
      }
      if (!safe_repo_path(f.path))
        throw HubError(fmt::format("{} {}: the listing names the file '{}', which cannot be a path in the cache",
                                   type_word(type), repo_id, f.path));
      listing.files.push_back(std::move(f));
    }
    url = next;
  }
  return listing;
}

DownloadSummary download(const RepoListing& listing, const std::vector<std::string>& files, const HubOptions& options) {
  Client client(options);
  const fs::path repo_dir = options.cache / model::hub_repo_folder(listing.repo_id, listing.type);
  DownloadSummary summary;
  summary.snapshot = repo_dir / "snapshots" / listing.commit;
  std::error_code ec;
  fs::create_directories(repo_dir / "blobs", ec);
  if (ec)
    throw HubError(fmt::format("cannot create {}: {}; set HF_HOME or HF_HUB_CACHE to a writable folder",
                               (repo_dir / "blobs").string(), ec.message()));
  write_cachedir_tag(options.cache);
  write_tree_cache(repo_dir, listing);
  // Refused before a byte is written, rather than a full disk half-way.
  const uint64_t needed = missing_from_cache(listing, files, options).second;
  if (const auto space = fs::space(repo_dir, ec); !ec && needed > space.available)
    throw HubError(fmt::format("{} {} needs {} in {}, which has {} free; free space there, or point HF_HOME (or "
                               "HF_HUB_CACHE) at a disk with room",
                               type_word(listing.type), listing.repo_id, human_bytes(needed), options.cache.string(),
                               human_bytes(space.available)));
  for (const auto& path : files) {
    auto it = std::find_if(listing.files.begin(), listing.files.end(), [&](const RepoFile& f) { return f.path == path; });
    if (it == listing.files.end())
      throw HubError(fmt::format("{} {} has no file {}", type_word(listing.type), listing.repo_id, path));
    const fs::path pointer = summary.snapshot / path;
    summary.files.push_back(path);
    if (fs::exists(pointer, ec)) continue;  // follows the link: the blob is there too
    const FileMetadata m = head_file(client, listing, path);
    if (m.commit != listing.commit)
      throw HubError(fmt::format("{} of {} {}: the Hub answered for commit {}, not {}", path, type_word(listing.type),
                                 listing.repo_id, m.commit, listing.commit));
    const fs::path blob = repo_dir / "blobs" / m.etag;
    if (!fs::exists(blob, ec)) {
      FileLock lock(options.cache / ".locks" / model::hub_repo_folder(listing.repo_id, listing.type) / (m.etag + ".lock"));
      if (!fs::exists(blob, ec)) {  // another process may have fetched it while we waited
        const fs::path partial = repo_dir / "blobs" / (m.etag + ".incomplete");
        if (!options.progress) fmt::print(stderr, "downloading {} ({})\n", path, human_bytes(m.size));
        Expected expected;
        if (it->lfs_sha256 && is_hex(m.etag, 64))
          expected.sha256 = m.etag;
        else if (!it->lfs_sha256 && is_hex(it->blob_id, 40) && m.etag == it->blob_id)
          expected.git_blob = it->blob_id;
        fetch_blob(client, listing, m, partial, path, expected);
        fs::permissions(partial, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read,
                        ec);
        fs::rename(partial, blob, ec);
        if (ec) throw HubError(fmt::format("cannot rename {} to {}: {}", partial.string(), blob.string(), ec.message()));
        ++summary.downloaded_files;
        summary.downloaded_bytes += m.size;
      }
    }
    link_pointer(blob, pointer);
  }
  if (listing.revision != listing.commit) {
    // Written only when it changes, as huggingface_hub does: a shared read-only cache that has
    // everything needs no write.
    const fs::path ref = repo_dir / "refs" / listing.revision;
    if (!fs::exists(ref, ec) || io_read(ref) != listing.commit) {
      fs::create_directories(ref.parent_path(), ec);
      io::write_file_atomic(ref, listing.commit);  // no newline, as huggingface_hub writes it
    }
  }
  return summary;
}

}  // namespace autotrain::hub
