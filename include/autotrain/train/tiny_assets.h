// The embedded default (configs/tiny.env): a tiny Falcon model folder in Hugging Face format
// (config.json, model.safetensors, a byte-level BPE tokenizer.json + tokenizer_config.json) and
// a small instruction dataset in the guanaco `### Human: … ### Assistant: …` format (train and
// test splits of arithmetic and string tasks a tiny model can learn), all generated
// deterministically from a seed, so CI and the README's first command need no download.
// No LibTorch in this header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace autotrain::train {

// Rows of the tiny dataset, each a guanaco-style text. Same seed, same rows.
std::vector<std::string> tiny_dataset_rows(uint64_t seed, int count);

// The files each writer puts in its folder.
const std::vector<std::string>& tiny_model_files();    // config.json, model.safetensors, tokenizer files
const std::vector<std::string>& tiny_dataset_files();  // train.jsonl, test.jsonl

// A folder the tiny files cannot go to without `overwrite`: it holds some of them but not all
// (so they are someone else's), or it is not a folder. Nothing has been written. A usage error.
class TinyAssetsConflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a writer does with `dir`: true = write the files, false = every one is there already
// and is kept. Throws TinyAssetsConflict (see above); with `overwrite`, only for a non-folder.
bool tiny_folder_needs_writing(const std::filesystem::path& dir, const std::vector<std::string>& files, bool overwrite);

// Writes <dir>/train.jsonl and <dir>/test.jsonl ({"text": ...} per line), atomically. Without
// `overwrite`, a folder holding both is kept and one holding only one of them is refused
// (TinyAssetsConflict). Returns whether it wrote them.
bool write_tiny_dataset(const std::filesystem::path& dir, uint64_t seed = 42, bool overwrite = false);

// The tokenizer.json text: byte-level BPE (GPT-2 byte mapping, GPT-2 split regex) with
// `<|endoftext|>` as id 0 and merges for the words of the dataset's templates.
std::string tiny_tokenizer_json();

// Writes a model folder: config.json (falcon-7b's architecture at toy size: multi-query,
// parallel attention), model.safetensors with transformers' initialisation drawn from `seed`,
// tokenizer.json, tokenizer_config.json, special_tokens_map.json. Without `overwrite`, a folder
// holding all of them is kept and one holding some is refused (TinyAssetsConflict): never a
// real model's config.json or tokenizer overwritten. Returns whether it wrote them.
bool write_tiny_model(const std::filesystem::path& dir, uint64_t seed = 42, bool overwrite = false);

}  // namespace autotrain::train
