// Block building (see autotrain/data/blocks.h for what each function mirrors).
#include "autotrain/data/blocks.h"

#include <algorithm>
#include <utility>

namespace autotrain::data {

namespace {

// Appends the whole blocks of [ids, labels) (already concatenated) and counts the rest.
void cut(const Ids& ids, const Ids& labels, Blocks& out) {
  const auto n = static_cast<int64_t>(ids.size());
  const int64_t whole = n / out.block_size;
  const int64_t keep = whole * out.block_size;
  out.input_ids.insert(out.input_ids.end(), ids.begin(), ids.begin() + keep);
  out.labels.insert(out.labels.end(), labels.begin(), labels.begin() + keep);
  out.count += whole;
  out.tokens += n;
  out.dropped += n - keep;
  out.largest_group = std::max(out.largest_group, n);
}

void append(std::span<const Ids> ids, std::span<const Ids> labels, size_t i, Ids& cat_ids, Ids& cat_labels) {
  cat_ids.insert(cat_ids.end(), ids[i].begin(), ids[i].end());
  const Ids& l = labels.empty() ? ids[i] : labels[i];
  cat_labels.insert(cat_labels.end(), l.begin(), l.end());
}

}  // namespace

Blocks group_texts(std::span<const Ids> ids, std::span<const Ids> labels, int64_t block_size, size_t num_shards,
                   size_t batch_rows) {
  Blocks out;
  out.block_size = block_size;
  const size_t n = ids.size();
  // datasets lowers num_proc to the number of rows when there are fewer rows than processes.
  const size_t k = std::min(num_shards, n);
  size_t start = 0;
  for (size_t s = 0; s < k; ++s) {
    const size_t len = n / k + (s < n % k ? 1 : 0);
    for (size_t b = start; b < start + len; b += batch_rows) {
      const size_t end = std::min(b + batch_rows, start + len);
      Ids cat_ids, cat_labels;
      for (size_t i = b; i < end; ++i) append(ids, labels, i, cat_ids, cat_labels);
      cut(cat_ids, cat_labels, out);
    }
    start += len;
  }
  return out;
}

Blocks pack_constant_length(std::span<const Ids> ids, std::span<const Ids> labels, std::span<const size_t> chars,
                            int32_t eos, int64_t block_size, double chars_per_token, size_t num_of_sequences) {
  Blocks out;
  out.block_size = block_size;
  const double max_buffer = static_cast<double>(block_size) * chars_per_token * static_cast<double>(num_of_sequences);
  size_t i = 0;
  while (i < ids.size()) {
    // trl checks the size before adding an example, so a buffer ends with the example that
    // crossed the limit.
    Ids cat_ids, cat_labels;
    double buffered = 0;
    while (i < ids.size() && buffered < max_buffer) {
      append(ids, labels, i, cat_ids, cat_labels);
      cat_ids.push_back(eos);
      // The separator is predicted, except after an example whose every label is ignored (no
      // response template): nothing of that example is learned.
      const bool all_ignored = !labels.empty() && !labels[i].empty() &&
                               std::all_of(labels[i].begin(), labels[i].end(), [](int32_t l) { return l == kIgnoreIndex; });
      cat_labels.push_back(all_ignored ? kIgnoreIndex : eos);
      buffered += static_cast<double>(chars[i]);
      ++i;
    }
    cut(cat_ids, cat_labels, out);
  }
  return out;
}

namespace {

// Non-overlapping matches of any of `spellings` in `ex`, left to right: (start, end) pairs. At a
// position where several match, the longest wins.
std::vector<std::pair<size_t, size_t>> find_markers(const Ids& ex, std::span<const Ids> spellings) {
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < ex.size();) {
    size_t len = 0;
    for (const Ids& t : spellings)
      if (!t.empty() && t.size() > len && t.size() <= ex.size() - i && std::equal(t.begin(), t.end(), ex.begin() + static_cast<std::ptrdiff_t>(i)))
        len = t.size();
    if (len == 0) {
      ++i;
      continue;
    }
    out.emplace_back(i, i + len);
    i += len;
  }
  return out;
}

}  // namespace

Masked mask_prompts(std::span<const Ids> ids, std::span<const Ids> responses, std::span<const Ids> instructions) {
  Masked out;
  out.labels.reserve(ids.size());
  for (const Ids& ex : ids) {
    if (ex.empty()) {  // a skipped (empty) row: nothing to mask, nothing to warn about
      out.labels.emplace_back();
      continue;
    }
    const auto answers = find_markers(ex, responses);
    Ids l(ex.size(), kIgnoreIndex);
    if (answers.empty()) {
      ++out.without_template;
    } else if (instructions.empty()) {
      const size_t from = answers.back().second;
      std::copy(ex.begin() + static_cast<std::ptrdiff_t>(from), ex.end(), l.begin() + static_cast<std::ptrdiff_t>(from));
    } else if (const auto turns = find_markers(ex, instructions); turns.empty()) {
      ++out.without_template;  // trl masks an example without an instruction marker whole too
    } else {
      for (size_t k = 0; k < answers.size(); ++k) {
        // An answer runs to the next instruction marker after it, or the next response marker
        // (two answers in a row), or the end.
        const size_t end = answers[k].second;
        size_t stop = k + 1 < answers.size() ? answers[k + 1].first : ex.size();
        for (const auto& t : turns)
          if (t.first >= end) {
            stop = std::min(stop, t.first);
            break;
          }
        std::copy(ex.begin() + static_cast<std::ptrdiff_t>(end), ex.begin() + static_cast<std::ptrdiff_t>(stop),
                  l.begin() + static_cast<std::ptrdiff_t>(end));
      }
    }
    out.labels.push_back(std::move(l));
  }
  return out;
}

size_t count_code_points(std::string_view text) {
  size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace autotrain::data
