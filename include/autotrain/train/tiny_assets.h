// The embedded default (configs/tiny.env): a tiny Falcon model folder in Hugging Face format
// (config.json, model.safetensors, a byte-level BPE tokenizer.json + tokenizer_config.json) and
// a small instruction dataset in the guanaco `### Human: … ### Assistant: …` format (train and
// test splits of arithmetic and string tasks a tiny model can learn), all generated
// deterministically from a seed, so CI and the README's first command need no download.
// No LibTorch in this header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace autotrain::train {

// Rows of the tiny dataset, each a guanaco-style text. Same seed, same rows.
std::vector<std::string> tiny_dataset_rows(uint64_t seed, int count);

// Writes <dir>/train.jsonl and <dir>/test.jsonl ({"text": ...} per line). Files are written
// atomically; an existing folder is left as it is unless `overwrite`.
void write_tiny_dataset(const std::filesystem::path& dir, uint64_t seed = 42, bool overwrite = false);

// The tokenizer.json text: byte-level BPE (GPT-2 byte mapping, GPT-2 split regex) with
// `<|endoftext|>` as id 0 and merges for the words of the dataset's templates.
std::string tiny_tokenizer_json();

// Writes a model folder: config.json (falcon-7b's architecture at toy size: multi-query,
// parallel attention), model.safetensors with transformers' initialisation drawn from `seed`,
// tokenizer.json, tokenizer_config.json, special_tokens_map.json.
void write_tiny_model(const std::filesystem::path& dir, uint64_t seed = 42, bool overwrite = false);

}  // namespace autotrain::train
