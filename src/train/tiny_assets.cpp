// The embedded tiny model and dataset (see tiny_assets.h). Everything is derived from a seed
// with a fixed generator (splitmix64), never from the C++ library's distributions, whose
// output differs between implementations.
#include "autotrain/train/tiny_assets.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autotrain/io/atomic_file.h"
#include "autotrain/model/loader.h"
#include "autotrain/tokenizer/tokenizer.h"

namespace autotrain::train {

namespace {

using nlohmann::ordered_json;

struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
};

constexpr std::array<const char*, 40> kWords = {
    "cat",   "dog",   "tree",  "house", "river", "stone", "apple", "bread", "light", "water",
    "green", "sun",   "moon",  "star",  "bird",  "fish",  "road",  "door",  "book",  "chair",
    "cloud", "rain",  "snow",  "wind",  "fire",  "sand",  "milk",  "salt",  "gold",  "iron",
    "lamp",  "ship",  "train", "horse", "mouse", "tiger", "lemon", "grape", "plum",  "pear"};

std::string reversed(std::string s) {
  std::reverse(s.begin(), s.end());
  return s;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Words of the templates as the byte-level pre-tokenizer cuts them (a leading space is part of
// the word). Each gets the left-to-right merges that build it, so the BPE model turns it into
// one token; everything else stays one token per byte.
constexpr std::array<const char*, 13> kMergedWords = {"###",   " Human", " Assistant", " What",  " is",
                                                      " plus", " minus", " Reverse",   " the",   " word",
                                                      " Spell", " in",   " capitals"};

void write_text(const std::filesystem::path& path, const std::string& text) { io::write_file_atomic(path, text); }

}  // namespace

std::vector<std::string> tiny_dataset_rows(uint64_t seed, int count) {
  SplitMix64 rng{seed};
  std::vector<std::string> rows;
  rows.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    std::string human, answer;
    switch (rng.below(4)) {
      case 0: {
        int a = rng.below(50), b = rng.below(50);
        human = fmt::format("What is {} plus {}?", a, b);
        answer = std::to_string(a + b);
        break;
      }
      case 1: {
        int a = rng.below(50), b = rng.below(50);
        if (a < b) std::swap(a, b);
        human = fmt::format("What is {} minus {}?", a, b);
        answer = std::to_string(a - b);
        break;
      }
      case 2: {
        std::string w = kWords[static_cast<size_t>(rng.below(static_cast<int>(kWords.size())))];
        human = fmt::format("Reverse the word {}.", w);
        answer = reversed(w);
        break;
      }
      default: {
        std::string w = kWords[static_cast<size_t>(rng.below(static_cast<int>(kWords.size())))];
        human = fmt::format("Spell {} in capitals.", w);
        answer = upper(w);
        break;
      }
    }
    rows.push_back(fmt::format("### Human: {}### Assistant: {}", human, answer));
  }
  return rows;
}

const std::vector<std::string>& tiny_model_files() {
  static const std::vector<std::string> files = {"config.json", "model.safetensors", "tokenizer.json",
                                                 "tokenizer_config.json", "special_tokens_map.json"};
  return files;
}

const std::vector<std::string>& tiny_dataset_files() {
  static const std::vector<std::string> files = {"train.jsonl", "test.jsonl"};
  return files;
}

bool tiny_folder_needs_writing(const std::filesystem::path& dir, const std::vector<std::string>& files, bool overwrite) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec))
    throw TinyAssetsConflict(fmt::format("{} is a file, not a folder; name a folder to write into", dir.string()));
  if (overwrite) return true;
  std::vector<std::string> present;
  for (const auto& f : files)
    if (std::filesystem::exists(dir / f, ec)) present.push_back(f);
  if (present.empty()) return true;
  if (present.size() == files.size()) return false;
  std::string listed, all;
  for (const auto& f : present) listed += (listed.empty() ? "" : ", ") + f;
  for (const auto& f : files) all += (all.empty() ? "" : ", ") + f;
  throw TinyAssetsConflict(fmt::format(
      "{} already holds {}, but not all of the files `tiny` writes there ({}), so writing would overwrite them; "
      "pass --force to overwrite them, or name another folder",
      dir.string(), listed, all));
}

bool write_tiny_dataset(const std::filesystem::path& dir, uint64_t seed, bool overwrite) {
  if (!tiny_folder_needs_writing(dir, tiny_dataset_files(), overwrite)) return false;
  std::filesystem::create_directories(dir);
  // One stream of rows: the first 1200 train, the next 120 test (disjoint draws).
  auto rows = tiny_dataset_rows(seed, 1320);
  std::string train, test;
  for (size_t i = 0; i < rows.size(); ++i)
    (i < 1200 ? train : test) += ordered_json{{"text", rows[i]}}.dump() + "\n";
  write_text(dir / "train.jsonl", train);
  write_text(dir / "test.jsonl", test);
  return true;
}

std::string tiny_tokenizer_json() {
  const auto& alphabet = tokenizer::byte_level_chars();
  ordered_json vocab = ordered_json::object();
  vocab["<|endoftext|>"] = 0;
  for (int b = 0; b < 256; ++b) vocab[alphabet[static_cast<size_t>(b)]] = b + 1;
  ordered_json merges = ordered_json::array();
  std::set<std::string> known;
  int next_id = 257;
  for (const char* word : kMergedWords) {
    std::string w = word;
    std::string left = alphabet[static_cast<unsigned char>(w[0])];
    for (size_t i = 1; i < w.size(); ++i) {
      std::string right = alphabet[static_cast<unsigned char>(w[i])];
      std::string joined = left + right;
      if (known.insert(joined).second) {
        merges.push_back(left + " " + right);
        vocab[joined] = next_id++;
      }
      left = joined;
    }
  }
  ordered_json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                             {"use_regex", true}};
  ordered_json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = ordered_json::array({ordered_json{{"id", 0},
                                                        {"content", "<|endoftext|>"},
                                                        {"single_word", false},
                                                        {"lstrip", false},
                                                        {"rstrip", false},
                                                        {"normalized", false},
                                                        {"special", true}}});
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = byte_level;
  j["post_processor"] = byte_level;
  j["decoder"] = byte_level;
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", merges}};
  return j.dump(2) + "\n";
}

bool write_tiny_model(const std::filesystem::path& dir, uint64_t seed, bool overwrite) {
  if (!tiny_folder_needs_writing(dir, tiny_model_files(), overwrite)) return false;
  std::filesystem::create_directories(dir);
  const std::string tokenizer = tiny_tokenizer_json();
  const int64_t vocab = static_cast<int64_t>(nlohmann::json::parse(tokenizer)["model"]["vocab"].size());
  // falcon-7b's layout (multi-query, parallel attention, one LayerNorm, no biases) at toy size.
  ordered_json config = {{"architectures", {"FalconForCausalLM"}},
                         {"model_type", "falcon"},
                         {"alibi", false},
                         {"apply_residual_connection_post_layernorm", false},
                         {"attention_dropout", 0.0},
                         {"bias", false},
                         {"bos_token_id", 0},
                         {"eos_token_id", 0},
                         {"hidden_dropout", 0.0},
                         {"hidden_size", 128},
                         {"initializer_range", 0.15},
                         {"layer_norm_epsilon", 1e-5},
                         {"max_position_embeddings", 512},
                         {"multi_query", true},
                         {"new_decoder_architecture", false},
                         {"num_attention_heads", 4},
                         {"num_hidden_layers", 2},
                         {"parallel_attn", true},
                         {"rope_theta", 10000.0},
                         {"tie_word_embeddings", true},
                         {"torch_dtype", "float32"},
                         {"use_cache", true},
                         {"vocab_size", vocab}};
  write_text(dir / "tokenizer.json", tokenizer);
  write_text(dir / "tokenizer_config.json",
             ordered_json{{"add_prefix_space", false},
                          {"eos_token", "<|endoftext|>"},
                          {"model_input_names", {"input_ids", "attention_mask"}},
                          {"model_max_length", 512},
                          {"tokenizer_class", "PreTrainedTokenizerFast"}}
                     .dump(2) + "\n");
  write_text(dir / "special_tokens_map.json", ordered_json{{"eos_token", "<|endoftext|>"}}.dump(2) + "\n");
  write_text(dir / "config.json", config.dump(2) + "\n");
  model::write_random_checkpoint(dir / "config.json", dir, seed);
  return true;
}

}  // namespace autotrain::train
