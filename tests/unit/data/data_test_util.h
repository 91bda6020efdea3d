// Helpers for the data tests: a tiny model folder whose tokenizer maps every byte to one id
// (the byte's value; "<|endoftext|>" is 256), so expected blocks can be written by hand, and a
// config built from key=value lines.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autotrain/config/config.h"
#include "autotrain/tokenizer/tokenizer.h"

namespace autotrain::data::test {

inline constexpr int kEos = 256;

// GPT-2's byte -> printable character table (what ByteLevel pre-tokenizers use as the alphabet).
inline std::string byte_char(int b) { return tokenizer::byte_level_chars()[static_cast<size_t>(b)]; }

inline void write_text(const std::filesystem::path& p, const std::string& s) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

// A model folder: config.json (max_position_embeddings) and a byte-level BPE tokenizer.json.
inline std::filesystem::path write_byte_model(const std::filesystem::path& dir, int max_positions = 256) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  vocab["<|endoftext|>"] = kEos;
  nlohmann::json tok = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       {{{"id", kEos}, {"content", "<|endoftext|>"}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
         {"normalized", false}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab},
        {"merges", nlohmann::json::array()}}}};
  write_text(dir / "tokenizer.json", tok.dump());
  write_text(dir / "tokenizer_config.json", R"({"eos_token": "<|endoftext|>", "model_max_length": 2048})");
  write_text(dir / "config.json", nlohmann::json({{"model_type", "falcon"}, {"max_position_embeddings", max_positions}}).dump());
  return dir;
}

inline config::Config make_config(const std::vector<std::string>& sets) {
  config::ResolveInputs in;
  in.overrides = sets;
  return config::Config::resolve(in);
}

}  // namespace autotrain::data::test
