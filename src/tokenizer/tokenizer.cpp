// load_tokenizer(): finds the tokenizer file of a model folder and picks the implementation;
// encode_batch(): the thread pool shared by every implementation.
#include "autotrain/tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <latch>
#include <mutex>
#include <fstream>
#include <sstream>
#include <thread>
#include <pthread.h>
#include <unistd.h>

#include "hf_tokenizer.h"
#include "sp_tokenizer.h"
#include "special_tokens.h"
#include "autotrain/io/json_error.h"
#include "autotrain/io/json_text.h"

namespace autotrain::tokenizer {

namespace fs = std::filesystem;

namespace {

// Worker threads that outlive a single encode_batch() call, so that their per-thread word
// caches stay warm across calls (the data pipeline encodes a dataset in many batches).
//
// fork(): the child inherits this object but none of the threads. A worker may hold the mutex
// at the moment of the fork (it re-takes it right after finishing a task), and the condition
// variable may list the parent's threads as waiters; either would hang the child's first batch.
// So the prepare handler takes the mutex (no worker holds it across the fork), and the child
// handler starts from a fresh mutex, condition variable and thread list, leaking the inherited
// ones (they cannot be unlocked, destroyed or joined safely).
class WorkerPool {
 public:
  static WorkerPool& instance() {
    static WorkerPool* pool = [] {
      auto* p = new WorkerPool();  // never destroyed: threads blocked at exit are harmless
      pthread_atfork(&WorkerPool::before_fork, &WorkerPool::after_fork_parent, &WorkerPool::after_fork_child);
      return p;
    }();
    return *pool;
  }
  // Runs `fn` on `extra` pool threads and on the calling thread; returns when all are done.
  void run(unsigned extra, const std::function<void()>& fn) {
    std::latch done(extra);
    Sync& sync = *sync_;
    {
      std::lock_guard lock(sync.mutex);
      while (threads_->size() < extra) threads_->emplace_back([this, &sync] { loop(sync); });
      for (unsigned i = 0; i < extra; ++i)
        tasks_.push_back([&fn, &done] {
          fn();
          done.count_down();
        });
    }
    sync.cv.notify_all();
    fn();
    done.wait();
  }

 private:
  struct Sync {
    std::mutex mutex;
    std::condition_variable cv;
  };

  static void before_fork() { instance().sync_->mutex.lock(); }
  static void after_fork_parent() { instance().sync_->mutex.unlock(); }
  static void after_fork_child() {
    WorkerPool& p = instance();
    p.sync_ = new Sync;                           // the inherited one is held and may list waiters
    p.threads_ = new std::vector<std::thread>;    // handles without threads behind them
    p.tasks_.clear();
  }

  void loop(Sync& sync) {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(sync.mutex);
        sync.cv.wait(lock, [this] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  Sync* sync_ = new Sync;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread>* threads_ = new std::vector<std::thread>;
};

}  // namespace

std::vector<std::vector<TokenId>> Tokenizer::encode_batch(std::span<const std::string> texts, bool add_special_tokens,
                                                          unsigned num_threads) const {
  std::vector<std::vector<TokenId>> out(texts.size());
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  unsigned n = static_cast<unsigned>(std::min<size_t>(num_threads ? num_threads : hw, texts.size()));
  if (n <= 1) {
    for (size_t i = 0; i < texts.size(); ++i) out[i] = encode(texts[i], add_special_tokens);
    return out;
  }
  // Small chunks handed out on demand keep threads busy when text lengths vary a lot.
  std::atomic<size_t> next{0};
  constexpr size_t kChunk = 16;
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    try {
      for (size_t begin; (begin = next.fetch_add(kChunk)) < texts.size();)
        for (size_t i = begin; i < std::min(begin + kChunk, texts.size()); ++i)
          out[i] = encode(texts[i], add_special_tokens);
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  WorkerPool::instance().run(n - 1, work);
  if (error) std::rethrow_exception(error);
  return out;
}

namespace {

// Real tokenizer files are megabytes (tokenizer.json of a 256k vocabulary: ~35 MB). A file of
// gigabytes is the wrong file, and would be read whole into memory, and protobuf cannot parse a
// SentencePiece model over 2 GiB at all (it aborts the process rather than fail).
constexpr uintmax_t kMaxTokenizerFileBytes = uintmax_t{1} << 30;

std::string read_whole(const fs::path& p) {
  std::error_code ec;
  if (const uintmax_t size = fs::file_size(p, ec); !ec && size > kMaxTokenizerFileBytes)
    throw TokenizerError(fmt::format("{}: {:.1f} GiB is far larger than any tokenizer file (at most 1 GiB is read); "
                                     "is this the right file?",
                                     p.string(), static_cast<double>(size) / (1 << 30)));
  std::ifstream in(p, std::ios::binary);
  if (!in) throw TokenizerError(fmt::format("{}: cannot open: {}", p.string(), std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw TokenizerError(fmt::format("{}: read error", p.string()));
  return ss.str();
}

// "eos_token": "</s>" or {"content": "</s>", ...} or null.
std::optional<std::string> token_name(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

SpecialTokenConfig read_special_token_config(const fs::path& folder) {
  SpecialTokenConfig c;
  for (const char* name : {"tokenizer_config.json", "special_tokens_map.json"}) {
    fs::path p = folder / name;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) continue;
    std::string text = read_whole(p);
    c.raw += std::string(name) + "\n" + text + "\n";
    nlohmann::json j;
    try {
      j = io::parse_json_text(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw TokenizerError(fmt::format("{}: not valid JSON: {}", p.string(), io::json_error_text(e)));
    }
    if (!j.is_object()) throw TokenizerError(fmt::format("{}: expected a JSON object", p.string()));
    // tokenizer_config.json is read first and wins; the map only fills gaps.
    if (!c.bos_token) c.bos_token = token_name(j, "bos_token");
    if (!c.eos_token) c.eos_token = token_name(j, "eos_token");
    if (!c.pad_token) c.pad_token = token_name(j, "pad_token");
    if (!c.add_bos_token && j.contains("add_bos_token") && j["add_bos_token"].is_boolean())
      c.add_bos_token = j["add_bos_token"].get<bool>();
    if (!c.add_eos_token && j.contains("add_eos_token") && j["add_eos_token"].is_boolean())
      c.add_eos_token = j["add_eos_token"].get<bool>();
  }
  return c;
}

std::string hex_digest(std::string_view data) {
  // Two FNV-1a 64 lanes with different offsets and primes: 128 bits, stable everywhere.
  uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
  for (unsigned char ch : data) {
    a = (a ^ ch) * 0x100000001b3ull;
    b = (b ^ ch) * 0x100000001b5ull;
  }
  // Fold in the length so that prefixes differ even when a lane collides.
  a ^= data.size();
  b = (b ^ (data.size() >> 7)) * 0x100000001b5ull;
  return fmt::format("{:016x}{:016x}", a, b);
}

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& path) {
  std::error_code ec;
  fs::path file = path;
  if (fs::is_directory(path, ec)) {
    if (fs::is_regular_file(path / "tokenizer.json", ec))
      file = path / "tokenizer.json";
    else if (fs::is_regular_file(path / "tokenizer.model", ec))
      file = path / "tokenizer.model";
    else
      throw TokenizerError(fmt::format("{}: no tokenizer.json or tokenizer.model in this folder", path.string()));
  } else if (!fs::exists(path, ec)) {
    throw TokenizerError(fmt::format("{}: no such file or folder", path.string()));
  }
  SpecialTokenConfig specials = read_special_token_config(file.parent_path().empty() ? fs::path(".") : file.parent_path());
  std::string ext = file.extension().string();
  std::string bytes = read_whole(file);
  bool looks_json = ext == ".json";
  if (ext != ".json" && ext != ".model") {
    size_t first = bytes.find_first_not_of(" \t\r\n");
    looks_json = first != std::string::npos && bytes[first] == '{';
  }
  if (looks_json) return load_hf_tokenizer(bytes, file.string(), specials);
  return load_sentencepiece(bytes, file.string(), specials);
}

}  // namespace autotrain::tokenizer
