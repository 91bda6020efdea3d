// Turning tokenized examples into fixed-length training blocks, the two ways the tutorial's stack
// did it, plus completions-only loss masks. Pure functions on ids: no tokenizer, no LibTorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace autotrain::data {

using Ids = std::vector<int32_t>;
inline constexpr int32_t kIgnoreIndex = -100;  // label of a position the loss skips

struct Blocks {
  int64_t block_size = 0;
  int64_t count = 0;
  std::vector<int32_t> input_ids;  // count * block_size
  std::vector<int32_t> labels;     // same shape; kIgnoreIndex where not predicted
  int64_t tokens = 0;              // tokens that went in (EOS separators included)
  int64_t dropped = 0;             // tokens in no block (remainders)
  int64_t largest_group = 0;       // tokens of the largest batch (default) or buffer (sft) cut
};

// TRAINER=default, as AutoTrain 0.6.44's group_texts under datasets' map(batched=True,
// num_proc=4): the examples are split into min(num_shards, n) contiguous shards (shard i gets
// n / k rows, one more for i < n % k), each shard into map batches of `batch_rows` examples;
// within a batch the examples are concatenated, cut to a multiple of block_size (a batch with
// fewer tokens than one block yields nothing) and cut into blocks. `labels` (per example, same
// lengths as `ids`) may be empty: then labels = input_ids.
Blocks group_texts(std::span<const Ids> ids, std::span<const Ids> labels, int64_t block_size, size_t num_shards = 4,
                   size_t batch_rows = 1000);

// TRAINER=sft, as trl 0.7.2's ConstantLengthDataset (packing=True): examples are gathered into
// buffers until a buffer holds at least block_size * chars_per_token * num_of_sequences
// characters (`chars[i]` = Python len() of example i's text, i.e. code points), each buffer's
// examples are joined with `eos` after every one and cut into block_size blocks, the buffer's
// remainder dropped. trl shuffles blocks within a buffer; the cache keeps them in order (the
// trainer shuffles anyway). The EOS separators are predicted (label = eos), except after an
// example whose labels are all kIgnoreIndex.
Blocks pack_constant_length(std::span<const Ids> ids, std::span<const Ids> labels, std::span<const size_t> chars,
                            int32_t eos, int64_t block_size, double chars_per_token = 3.6,
                            size_t num_of_sequences = 1024);

// Completions-only labels, as trl's DataCollatorForCompletionOnlyLM decides them. `responses` and
// `instructions` each list the spellings of one marker (it can tokenize differently after a
// newline, so callers pass each spelling).
// - Without instruction markers: every label up to and including the LAST occurrence of the
//   response marker is kIgnoreIndex (trl searches all occurrences and keeps the last), so a
//   multi-turn example trains on its final answer only.
// - With them (trl's instruction_template): every response's span is trained on, from the end of
//   its response marker up to the next instruction marker; the instruction turns, the markers and
//   anything before the first response are kIgnoreIndex. This is trl's result where turns
//   alternate; where they do not (two answers in a row, a turn without an answer), trl pairs the
//   markers by position and leaves markers or user turns unmasked, while each answer here keeps
//   its own span.
// An example without the response marker (or, with instruction markers, without one of those) is
// masked whole (trl warns and does the same) and counted.
struct Masked {
  std::vector<Ids> labels;
  size_t without_template = 0;
};
Masked mask_prompts(std::span<const Ids> ids, std::span<const Ids> responses, std::span<const Ids> instructions = {});

// Code points of UTF-8 text (what Python's len() counts for valid text): bytes that are not
// continuation bytes.
size_t count_code_points(std::string_view text);

}  // namespace autotrain::data
