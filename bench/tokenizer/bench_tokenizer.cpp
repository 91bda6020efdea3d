// Encode throughput of our tokenizer on a corpus: single thread (cold cache, then warm) and
// batch on all cores. Driven by run_bench.py, which times the Hugging Face library on the
// same corpus in the same run and reports the ratios.
//
//   bench_tokenizer --tokenizer PATH --corpus FILE [--threads N] [--repeat R]
//
// FILE holds documents as <u32 little-endian length><bytes>. Prints one JSON object.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "autotrain/tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;
using autotrain::tokenizer::TokenId;

std::vector<std::string> read_corpus(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string data = ss.str();
  std::vector<std::string> docs;
  for (size_t pos = 0; pos + 4 <= data.size();) {
    uint32_t n;
    std::memcpy(&n, data.data() + pos, 4);
    pos += 4;
    if (pos + n > data.size()) throw std::runtime_error(path + ": truncated");
    docs.push_back(data.substr(pos, n));
    pos += n;
  }
  return docs;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Order-sensitive checksum of all ids, compared with the reference's by run_bench.py.
uint64_t checksum(const std::vector<std::vector<TokenId>>& all) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& ids : all) {
    for (TokenId id : ids) h = (h ^ static_cast<uint32_t>(id)) * 1099511628211ull;
    h = (h ^ 0xFFFFFFFFull) * 1099511628211ull;
  }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  std::string tokenizer_path, corpus_path;
  unsigned threads = std::thread::hardware_concurrency();
  int repeat = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--tokenizer") tokenizer_path = next();
    else if (a == "--corpus") corpus_path = next();
    else if (a == "--threads") threads = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--repeat") repeat = std::stoi(next());
    else {
      std::cerr << "usage: bench_tokenizer --tokenizer PATH --corpus FILE [--threads N] [--repeat R]\n";
      return 2;
    }
  }
  try {
    auto docs = read_corpus(corpus_path);
    size_t bytes = 0;
    for (const auto& d : docs) bytes += d.size();

    auto t0 = Clock::now();
    auto tok = autotrain::tokenizer::load_tokenizer(tokenizer_path);
    double load_s = seconds_since(t0);

    // Cold: the first pass fills the word cache, as a fresh process would.
    std::vector<std::vector<TokenId>> ids(docs.size());
    t0 = Clock::now();
    for (size_t i = 0; i < docs.size(); ++i) ids[i] = tok->encode(docs[i], false);
    double cold_s = seconds_since(t0);
    size_t tokens = 0;
    for (const auto& v : ids) tokens += v.size();

    double warm_s = 1e30;
    for (int r = 0; r < repeat; ++r) {
      t0 = Clock::now();
      for (size_t i = 0; i < docs.size(); ++i) ids[i] = tok->encode(docs[i], false);
      warm_s = std::min(warm_s, seconds_since(t0));
    }
    double batch_s = 1e30;
    std::vector<std::vector<TokenId>> batch;
    for (int r = 0; r < repeat; ++r) {
      t0 = Clock::now();
      batch = tok->encode_batch(docs, false, threads);
      batch_s = std::min(batch_s, seconds_since(t0));
    }
    std::printf(
        "{\"documents\": %zu, \"bytes\": %zu, \"tokens\": %zu, \"load_s\": %.4f, \"single_cold_s\": %.4f, "
        "\"single_warm_s\": %.4f, \"batch_s\": %.4f, \"threads\": %u, \"checksum\": \"%016llx\", "
        "\"batch_checksum\": \"%016llx\"}\n",
        docs.size(), bytes, tokens, load_s, cold_s, warm_s, batch_s, threads,
        static_cast<unsigned long long>(checksum(ids)), static_cast<unsigned long long>(checksum(batch)));
  } catch (const std::exception& e) {
    std::cerr << "bench_tokenizer: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
