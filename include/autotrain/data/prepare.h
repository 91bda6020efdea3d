// `autotrain data` and the first half of `autotrain train`: rows from DATA_PATH, DATA_FILE
// written as the tutorial's dataload.py did, then token blocks (TRAINER default | sft,
// completions-only masking) in the token cache under <project>/autotrain-data/, reused while its
// manifest matches. No LibTorch: the CLI and the trainer both include this.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "autotrain/config/config.h"
#include "autotrain/data/error.h"

namespace autotrain::data {

// DataError (autotrain/data/error.h): bad input (a missing file or column, no rows, nothing left
// after blocking); the message says what, where and how to fix it. The CLI exits 2.

// Fixed-length blocks, memory-mapped from the cache: block i is
// input_ids[i*block_size, (i+1)*block_size), its labels likewise (-100 = not predicted).
struct TokenBlocks {
  int64_t block_size = 0;
  int64_t count = 0;
  const int32_t* input_ids = nullptr;
  const int32_t* labels = nullptr;
  std::shared_ptr<const void> keepalive;  // the mapping

  std::span<const int32_t> ids(int64_t block) const {
    return {input_ids + block * block_size, static_cast<size_t>(block_size)};
  }
  std::span<const int32_t> label(int64_t block) const {
    return {labels + block * block_size, static_cast<size_t>(block_size)};
  }
};

// What one split turned into (the numbers behind PreparedData::summary).
struct SplitStats {
  std::string split;               // the split's name in DATA_PATH ("train", "test", ...)
  std::vector<std::string> files;  // where its rows came from
  int64_t rows = 0;                // rows read (held-out rows excluded from train, included in valid)
  int64_t skipped = 0;             // rows whose text was empty or null
  int64_t without_template = 0;    // completions-only: examples without the template (fully masked)
  int64_t tokens = 0;              // tokens before blocking (EOS separators included)
  int64_t blocks = 0;
  int64_t dropped = 0;             // tokens in no block (remainders cut off)
  int64_t unscored_blocks = 0;     // completions-only: blocks with no token to learn from
};

struct PreparedData {
  TokenBlocks train;
  std::optional<TokenBlocks> valid;
  std::filesystem::path cache_dir;  // <project>/autotrain-data
  std::filesystem::path model_dir;  // the resolved MODEL_NAME folder (tokenizer, config.json)
  bool reused = false;              // the cache matched its manifest
  std::string summary;              // human-readable lines: rows read/skipped, tokens, blocks, dropped
  SplitStats train_stats;
  std::optional<SplitStats> valid_stats;
  std::string rebuild_reason;        // why the cache was (re)built; empty when reused
  std::filesystem::path data_file;   // DATA_FILE as written; empty when not written
  // SHA-256 of what the blocks were built from, by content (the manifest's inputs without paths:
  // source files' sizes and hashes, tokenizer, tokenization keys): the same digest means the same
  // training data, wherever the files are.
  std::string inputs_digest;
  // With PrepareOptions::allow_missing_model and no model found: why (the lookup's message).
  // Then only DATA_FILE was written; no blocks, no cache, and the stats count rows only.
  std::string missing_model;
};

struct PrepareOptions {
  bool write_data_file = true;  // `data` writes DATA_FILE; `train` does not
  bool force_rebuild = false;
  // `data`: a MODEL_NAME not downloaded yet is no error (the tutorial's data step needed no
  // model); DATA_FILE is written and the cache is left for `train` to build.
  bool allow_missing_model = false;
  // Called with PreparedData::inputs_digest when the cache is about to be rebuilt, before any
  // of it changes: `train` refuses there a run whose data differ from its checkpoints', so the
  // old run's cache is not replaced by a run that will not start.
  std::function<void(const std::string& inputs_digest)> before_rebuild = nullptr;
  // A process that does not hold the project lock (ranks other than 0 of a data-parallel run):
  // reads the cache rank 0 prepared and writes nothing; a cache that would need a rebuild is an
  // error (the processes do not see the same files or config).
  bool read_only = false;
};

// Resolves DATA_PATH and MODEL_NAME, then reuses the cache when its manifest matches the source
// files, the tokenizer and every tokenization key, else rebuilds it (logging why). Throws
// DataError for bad input.
PreparedData prepare_data(const config::Config& cfg, const PrepareOptions& options = {});

// The block size a run uses, by AutoTrain 0.6.44's rule: the tokenizer's limit is
// tokenizer_config.json's model_max_length, or MODEL_MAX_LENGTH when that is above 2048 or
// missing; BLOCK_SIZE -1 means min(that limit, 1024), a larger BLOCK_SIZE is cut to it. The
// result is also capped at the model's max_position_embeddings (config.json; 2048 when absent).
// `warning` (when given) says what was cut, or is empty. Throws model::ModelError for an
// unreadable config.json or tokenizer_config.json.
int64_t effective_block_size(const config::Config& cfg, const std::filesystem::path& model_dir,
                             std::string* warning = nullptr);

}  // namespace autotrain::data
