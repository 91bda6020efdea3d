// Reading the rows `eval` scores: jsonl / json / csv (the data module's readers), pre-tokenized
// or text, and a Parquet file's text column.
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "autotrain/data/columnar.h"
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
std::vector<data::Row> read_rows(const std::filesystem::path& path, const std::string& text_column) {
  try {
    if (data::is_columnar_format(path.extension().string())) {
      // A Parquet or Arrow file's text column, as rows of that one column (pre-tokenized ones are
      // not read).
      auto table = data::read_column_text_file(path, text_column);
      if (!table.found)
        throw data::DataError(fmt::format("{}: no column \"{}\"; the columns are: {}. Pass --text-column", path.string(),
                                          text_column, fmt::join(table.columns, ", ")));
      std::vector<data::Row> rows;
      rows.reserve(table.values.size());
      for (size_t i = 0; i < table.values.size(); ++i)
        rows.push_back({i + 1, nlohmann::json{{text_column, table.values[i] ? nlohmann::json(std::move(*table.values[i]))
                                                                            : nlohmann::json()}}});
      return rows;
    }
    if (data::format_of(path) == ".txt") {  // one example per line, as `data` reads it by default
      std::vector<data::Row> rows;
      size_t line = 0;
      for (auto& text : data::read_text_examples(path, "line"))
        rows.push_back({++line, nlohmann::json{{text_column, std::move(text)}}});
      return rows;
    }
    return data::read_rows(path);
  } catch (const data::DataError& e) {
    throw EvalUsageError(fmt::format("--data {}", e.what()));
  }
}

}  // namespace

std::vector<int64_t> read_eval_tokens(const std::filesystem::path& data, const std::string& text_column,
                                      const std::filesystem::path& tokenizer_dir, std::optional<int64_t> vocab_size) {
  return read_eval_rows(data, text_column, tokenizer_dir, vocab_size).ids;
}

EvalTokens read_eval_rows(const std::filesystem::path& data, const std::string& text_column,
                          const std::filesystem::path& tokenizer_dir, std::optional<int64_t> vocab_size) {
  auto rows = read_rows(data, text_column);
  EvalTokens out;
  std::vector<int64_t>& ids = out.ids;
  std::vector<int64_t>& labels = out.labels;
#ifdef AUTOTRAIN_HAVE_TOKENIZER
  std::unique_ptr<tokenizer::Tokenizer> tok;
#endif
  // A CSV cell holds text: lists come as pandas writes them ("[1, 2, 3]"), read as JSON here.
  const bool csv = data::format_of(data) == ".csv";
  for (const auto& csv_or_json_row : rows) {
    std::string where = fmt::format("{}:{}", data.string(), csv_or_json_row.line);
    if (!csv_or_json_row.value.is_object()) throw EvalUsageError(fmt::format("{}: expected a JSON object per row", where));
    data::Row converted;  // a CSV row with its list cells parsed
    if (csv) {
      converted = csv_or_json_row;
      for (const char* list : {"input_ids", "labels", "attention_mask"}) {
        auto cell = converted.value.find(list);
        if (cell == converted.value.end() || !cell->is_string() || !cell->get<std::string>().starts_with("[")) continue;
        try {
          *cell = nlohmann::json::parse(cell->get<std::string>());
        } catch (const nlohmann::json::exception&) {
          throw EvalUsageError(fmt::format("{}: \"{}\" is not a list of token ids: {}", where, list, cell->dump()));
        }
      }
    }
    const data::Row& row = csv ? converted : csv_or_json_row;
    if (auto it = row.value.find("input_ids"); it != row.value.end()) {
      if (!it->is_array()) throw EvalUsageError(fmt::format("{}: \"input_ids\" must be a list of token ids", where));
      // Optional per-token lists beside input_ids, as a tokenized Hugging Face dataset has them.
      auto companion = [&](const char* name) -> const nlohmann::json* {
        auto c = row.value.find(name);
        if (c == row.value.end() || c->is_null()) return nullptr;
        if (!c->is_array() || c->size() != it->size())
          throw EvalUsageError(fmt::format("{}: \"{}\" must be a list as long as \"input_ids\" ({} ids)", where, name,
                                           it->size()));
        return &*c;
      };
      const nlohmann::json* row_labels = companion("labels");
      const nlohmann::json* mask = companion("attention_mask");
      for (size_t k = 0; k < it->size(); ++k) {
        const auto& v = (*it)[k];
        if (mask) {
          const auto& m = (*mask)[k];
          if (!m.is_number_integer() || (m.get<int64_t>() != 0 && m.get<int64_t>() != 1))
            throw EvalUsageError(fmt::format("{}: \"attention_mask\" must hold 0 and 1, found {}", where, m.dump()));
          if (m.get<int64_t>() == 0) continue;  // padding
        }
        int64_t label = -100;
        if (row_labels) {
          const auto& l = (*row_labels)[k];
          if (!l.is_number_integer() || (l.get<int64_t>() < 0 && l.get<int64_t>() != -100) ||
              (vocab_size && l.get<int64_t>() >= *vocab_size))
            throw EvalUsageError(fmt::format("{}: \"labels\" must hold token ids or -100 (not scored), found {}", where,
                                             l.dump()));
          label = l.get<int64_t>();
        }
        if (!v.is_number_integer() || v.get<int64_t>() < 0)
          throw EvalUsageError(fmt::format("{}: \"input_ids\" must hold non-negative integers, found {}", where, v.dump()));
        if (vocab_size && v.get<int64_t>() >= *vocab_size)
          throw EvalUsageError(fmt::format("{}: token id {} in \"input_ids\" is outside the model's vocabulary of {} "
                                           "(ids 0 to {}): were these ids made with another tokenizer?",
                                           where, v.get<int64_t>(), *vocab_size, *vocab_size - 1));
        ids.push_back(v.get<int64_t>());
        labels.push_back(row_labels ? label : v.get<int64_t>());
      }
      continue;
    }
    auto it = row.value.find(text_column);
    if (it != row.value.end() && it->is_null()) continue;  // no text (null, or a CSV "NA"): skipped, as in `data`
    if (it == row.value.end())
      throw EvalUsageError(fmt::format("{}: the row has neither an \"input_ids\" list nor a text column \"{}\" "
                                       "(choose the column with --text-column)",
                                       where, text_column));
    // A number or boolean is its text, as `data` reads it; a list or object is not text.
    const std::optional<std::string> cell = data::cell_text(*it);
    if (!cell)
      throw EvalUsageError(fmt::format("{}: column \"{}\" holds {}, not text; choose a column of strings with "
                                       "--text-column, or give \"input_ids\"",
                                       where, text_column, it->type_name()));
    const std::string& text = *cell;
#ifdef AUTOTRAIN_HAVE_TOKENIZER
    if (!tok) {
      try {
        tok = tokenizer::load_tokenizer(tokenizer_dir);
      } catch (const tokenizer::TokenizerError& e) {
        throw ModelError(fmt::format("{}: text rows need the model's tokenizer: {}", where, e.what()));
      }
    }
    for (auto id : tok->encode(text, /*add_special_tokens=*/true)) {
      // The folder's tokenizer and config.json disagree: a model error (exit 1), not the data's.
      if (vocab_size && id >= *vocab_size)
        throw ModelError(fmt::format("{}: the tokenizer in {} gives token id {}, outside the model's vocabulary of {} "
                                     "(config.json's vocab_size): the tokenizer does not belong to this model",
                                     where, tokenizer_dir.string(), id, *vocab_size));
      ids.push_back(id);
      labels.push_back(id);
    }
#else
    (void)tokenizer_dir;
    (void)text;
    throw EvalUsageError(fmt::format("{}: text rows need the tokenizer, which this build does not include; pass "
                                     "pre-tokenized rows ({{\"input_ids\": [...]}}) instead",
                                     where));
#endif
  }
  return out;
}

}  // namespace autotrain::model
