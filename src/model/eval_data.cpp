// Reading the rows `eval` scores: jsonl / json / csv (the data module's readers), pre-tokenized
// or text.
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autotrain/data/readers.h"
#include "autotrain/model/eval.h"
#include "autotrain/model/falcon_config.h"
#ifdef AUTOTRAIN_HAVE_TOKENIZER
#include "autotrain/tokenizer/tokenizer.h"
#endif

namespace autotrain::model {

namespace {

// The shared row readers (autotrain/data/readers.h) report bad files as data::DataError; for
// `eval` those are mistakes on the command line (exit 2).
std::vector<data::Row> read_rows(const std::filesystem::path& path) {
  try {
    return data::read_rows(path);
  } catch (const data::DataError& e) {
    throw EvalUsageError(fmt::format("--data {}", e.what()));
  }
}

}  // namespace

std::vector<int64_t> read_eval_tokens(const std::filesystem::path& data, const std::string& text_column,
                                      const std::filesystem::path& tokenizer_dir, std::optional<int64_t> vocab_size) {
  auto rows = read_rows(data);
  std::vector<int64_t> ids;
#ifdef AUTOTRAIN_HAVE_TOKENIZER
  std::unique_ptr<tokenizer::Tokenizer> tok;
#endif
  for (const auto& row : rows) {
    std::string where = fmt::format("{}:{}", data.string(), row.line);
    if (!row.value.is_object()) throw EvalUsageError(fmt::format("{}: expected a JSON object per row", where));
    if (auto it = row.value.find("input_ids"); it != row.value.end()) {
      if (!it->is_array()) throw EvalUsageError(fmt::format("{}: \"input_ids\" must be a list of token ids", where));
      for (const auto& v : *it) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0)
          throw EvalUsageError(fmt::format("{}: \"input_ids\" must hold non-negative integers, found {}", where, v.dump()));
        if (vocab_size && v.get<int64_t>() >= *vocab_size)
          throw EvalUsageError(fmt::format("{}: token id {} in \"input_ids\" is outside the model's vocabulary of {} "
                                           "(ids 0 to {}): were these ids made with another tokenizer?",
                                           where, v.get<int64_t>(), *vocab_size, *vocab_size - 1));
        ids.push_back(v.get<int64_t>());
      }
      continue;
    }
    auto it = row.value.find(text_column);
    if (it != row.value.end() && it->is_null()) continue;  // no text (null, or a CSV "NA"): skipped, as in `data`
    if (it == row.value.end() || !it->is_string())
      throw EvalUsageError(fmt::format("{}: the row has neither an \"input_ids\" list nor a text column \"{}\" "
                                       "(choose the column with --text-column)",
                                       where, text_column));
#ifdef AUTOTRAIN_HAVE_TOKENIZER
    if (!tok) {
      try {
        tok = tokenizer::load_tokenizer(tokenizer_dir);
      } catch (const tokenizer::TokenizerError& e) {
        throw ModelError(fmt::format("{}: text rows need the model's tokenizer: {}", where, e.what()));
      }
    }
    for (auto id : tok->encode(it->get_ref<const std::string&>(), /*add_special_tokens=*/true)) {
      // The folder's tokenizer and config.json disagree: a model error (exit 1), not the data's.
      if (vocab_size && id >= *vocab_size)
        throw ModelError(fmt::format("{}: the tokenizer in {} gives token id {}, outside the model's vocabulary of {} "
                                     "(config.json's vocab_size): the tokenizer does not belong to this model",
                                     where, tokenizer_dir.string(), id, *vocab_size));
      ids.push_back(id);
    }
#else
    (void)tokenizer_dir;
    throw EvalUsageError(fmt::format("{}: text rows need the tokenizer, which this build does not include; pass "
                                     "pre-tokenized rows ({{\"input_ids\": [...]}}) instead",
                                     where));
#endif
  }
  return ids;
}

}  // namespace autotrain::model
