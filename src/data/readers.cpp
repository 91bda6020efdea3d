// Row readers for dataset files (moved here from src/model/eval_data.cpp so that `data` and
// `eval` read files identically).
#include "autotrain/data/readers.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace autotrain::data {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: cannot read the file", path.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

// RFC 4180: quoted fields may hold commas, newlines and doubled quotes. The first record names
// the columns.
std::vector<Row> parse_csv(const fs::path& path, const std::string& text) {
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
  if (quoted) throw DataError(fmt::format("{}:{}: unterminated quoted field", path.string(), rec_line));
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
      throw DataError(fmt::format("{}:{}: {} fields, but the header has {}", path.string(), lines[r],
                                  records[r].size(), header.size()));
    json obj = json::object();
    for (size_t c = 0; c < header.size(); ++c) obj[header[c]] = records[r][c];
    rows.push_back({lines[r], std::move(obj)});
  }
  return rows;
}

std::vector<Row> parse_json(const fs::path& path, const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: not valid JSON: {}", path.string(), e.what()));
  }
  // datasets' json loader also takes an object whose "data" field holds the rows (field="data").
  if (j.is_object() && j.contains("data") && j["data"].is_array()) j = std::move(j["data"]);
  if (!j.is_array())
    throw DataError(fmt::format("{}: expected a JSON array of row objects (or {{\"data\": [...]}})", path.string()));
  std::vector<Row> rows;
  rows.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) rows.push_back({i + 1, std::move(j[i])});
  return rows;
}

std::vector<Row> parse_jsonl(const fs::path& path, const std::string& text) {
  std::vector<Row> rows;
  std::istringstream in(text);
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      rows.push_back({n, json::parse(line)});
    } catch (const json::exception& e) {
      throw DataError(fmt::format("{}:{}: not valid JSON: {}", path.string(), n, e.what()));
    }
  }
  return rows;
}

}  // namespace

std::vector<Row> read_rows(const fs::path& path) {
  std::string ext = path.extension().string();
  if (ext != ".csv" && ext != ".json" && ext != ".jsonl")
    throw DataError(fmt::format("{}: unknown format '{}'; use .jsonl, .json or .csv", path.string(), ext));
  std::string text = read_file_bytes(path);
  if (ext == ".csv") return parse_csv(path, text);
  if (ext == ".json") return parse_json(path, text);
  return parse_jsonl(path, text);
}

std::vector<std::string> read_text_lines(const fs::path& path) {
  std::string text = read_file_bytes(path);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    size_t stop = end;
    if (stop > start && text[stop - 1] == '\r') --stop;
    lines.emplace_back(text, start, stop - start);
    start = end + 1;
  }
  return lines;
}

}  // namespace autotrain::data
