// Reading the rows `eval` scores: jsonl / json / csv, pre-tokenized or text.
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autotrain/model/eval.h"
#include "autotrain/model/falcon_config.h"
#ifdef AUTOTRAIN_HAVE_TOKENIZER
#include "autotrain/tokenizer/tokenizer.h"
#endif

namespace autotrain::model {

namespace {

using nlohmann::json;

struct Row {
  size_t line;
  json value;  // an object
};

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw EvalUsageError(fmt::format("--data {}: cannot read the file", p.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// RFC 4180: quoted fields may hold commas, newlines and doubled quotes. The first record names
// the columns.
std::vector<Row> read_csv(const std::filesystem::path& path, const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<size_t> lines;
  std::vector<std::string> rec;
  std::string field;
  bool quoted = false, any = false;
  size_t line = 1, rec_line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && field.empty()) {
      quoted = any = true;
    } else if (c == ',') {
      rec.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        rec.push_back(std::move(field));
        records.push_back(std::move(rec));
        lines.push_back(rec_line);
      }
      rec.clear();
      field.clear();
      any = false;
      rec_line = ++line;
    } else {
      field += c;
      any = true;
    }
  }
  if (quoted) throw EvalUsageError(fmt::format("{}:{}: unterminated quoted field", path.string(), rec_line));
  if (any || !field.empty()) {
    rec.push_back(std::move(field));
    records.push_back(std::move(rec));
    lines.push_back(rec_line);
  }
  std::vector<Row> rows;
  if (records.empty()) return rows;
  const auto& header = records[0];
  for (size_t r = 1; r < records.size(); ++r) {
    if (records[r].size() != header.size())
      throw EvalUsageError(fmt::format("{}:{}: {} fields, but the header has {}", path.string(), lines[r],
                                       records[r].size(), header.size()));
    json obj = json::object();
    for (size_t c = 0; c < header.size(); ++c) obj[header[c]] = records[r][c];
    rows.push_back({lines[r], std::move(obj)});
  }
  return rows;
}

std::vector<Row> read_rows(const std::filesystem::path& path) {
  std::string text = read_all(path);
  std::string ext = path.extension().string();
  std::vector<Row> rows;
  if (ext == ".csv") return read_csv(path, text);
  if (ext == ".json") {
    json j;
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {
      throw EvalUsageError(fmt::format("{}: not valid JSON: {}", path.string(), e.what()));
    }
    if (!j.is_array()) throw EvalUsageError(fmt::format("{}: expected a JSON array of row objects", path.string()));
    for (size_t i = 0; i < j.size(); ++i) rows.push_back({i + 1, j[i]});
    return rows;
  }
  if (ext != ".jsonl")
    throw EvalUsageError(fmt::format("--data {}: unknown format '{}'; use .jsonl, .json or .csv", path.string(), ext));
  std::istringstream in(text);
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      rows.push_back({n, json::parse(line)});
    } catch (const json::exception& e) {
      throw EvalUsageError(fmt::format("{}:{}: not valid JSON: {}", path.string(), n, e.what()));
    }
  }
  return rows;
}

}  // namespace

std::vector<int64_t> read_eval_tokens(const std::filesystem::path& data, const std::string& text_column,
                                      const std::filesystem::path& tokenizer_dir) {
  std::vector<Row> rows = read_rows(data);
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
        ids.push_back(v.get<int64_t>());
      }
      continue;
    }
    auto it = row.value.find(text_column);
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
    for (auto id : tok->encode(it->get_ref<const std::string&>(), /*add_special_tokens=*/true)) ids.push_back(id);
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
