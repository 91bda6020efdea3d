// Row readers for dataset files (moved here from src/model/eval_data.cpp so that `data` and
// `eval` read files identically).
#include "autotrain/data/readers.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <limits>
#include <sstream>

#include <bzlib.h>
#include <fmt/format.h>
#include <lzma.h>
#include <zlib.h>

#include "autotrain/io/json_error.h"
#include "autotrain/io/json_text.h"
#include "autotrain/io/utf8.h"
#include "mapped_file.h"
#include "zstd_stream.h"

namespace autotrain::data {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: cannot read the file: {}", path.string(), std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

// The compression suffixes the datasets library decompresses by (any case): ".gz" / ".gzip" ->
// gzip, ".zst" / ".zstd" -> zstd, ".bz2" -> bzip2, ".xz" -> xz; anything else is none.
enum class Compression { kNone, kGzip, kZstd, kBzip2, kXz };
constexpr std::pair<const char*, Compression> kCompressionSuffixes[] = {
    {".gz", Compression::kGzip}, {".gzip", Compression::kGzip}, {".zst", Compression::kZstd},
    {".zstd", Compression::kZstd}, {".bz2", Compression::kBzip2}, {".xz", Compression::kXz}};

Compression compression_of(const fs::path& path) {
  std::string ext = path.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [suffix, kind] : kCompressionSuffixes)
    if (ext == suffix) return kind;
  return Compression::kNone;
}

}  // namespace

std::vector<std::string> compression_suffixes() {
  std::vector<std::string> out;
  for (const auto& entry : kCompressionSuffixes) out.emplace_back(entry.first);
  return out;
}

std::string format_of(const fs::path& path) {
  if (compression_of(path) != Compression::kNone) return path.stem().extension().string();
  return path.extension().string();
}

std::string data_stem(const fs::path& path) {
  const fs::path inner = compression_of(path) != Compression::kNone ? path.stem() : path.filename();
  return inner.stem().string();
}

namespace {

// Decompressed output, refused once past what the texts may take.
class Output {
 public:
  Output(const fs::path& path, uint64_t limit) : path_(path), limit_(limit) {}
  void append(const char* data, size_t n) {
    bytes.append(data, n);
    if (bytes.size() > limit_) too_big();
  }
  [[noreturn]] void too_big() const {
    throw DataError(fmt::format("{}: decompresses to more than {:.1f} GB, a quarter of this machine's memory (the "
                                "rows take more again once parsed); split it into smaller files",
                                path_.string(), static_cast<double>(limit_) / 1e9));
  }
  uint64_t limit() const { return limit_; }
  [[noreturn]] void damaged(std::string_view format, std::string_view why) const {
    throw DataError(fmt::format("{}: not a complete {} file ({}); download or compress it again", path_.string(), format,
                                why));
  }
  std::string bytes;

 private:
  const fs::path& path_;
  uint64_t limit_;
};

// The chunks that the codecs below write into before Output takes them.
constexpr size_t kChunk = 1 << 16;

// gzip: every member (cat a.gz b.gz makes two); zero bytes after a member are padding (tape
// blocks), skipped as Python's gzip does.
void gunzip(const std::string& packed, Output& out) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) out.damaged("gzip", "zlib would not start");
  std::unique_ptr<z_stream, int (*)(z_stream*)> end(&z, inflateEnd);
  char buf[kChunk];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  z.avail_in = static_cast<uInt>(std::min<size_t>(packed.size(), std::numeric_limits<uInt>::max()));
  size_t fed = z.avail_in;
  int rc = Z_OK;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
    if (z.avail_in == 0 && fed < packed.size()) {
      const size_t more = std::min<size_t>(packed.size() - fed, std::numeric_limits<uInt>::max());
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data() + fed));
      z.avail_in = static_cast<uInt>(more);
      fed += more;
    }
    if (rc == Z_STREAM_END) {
      const size_t consumed = fed - z.avail_in;
      if (z.avail_in == 0 && fed == packed.size()) return;
      if (packed.find_first_not_of('\0', consumed) == std::string::npos) return;
      if (inflateReset(&z) != Z_OK) break;
      continue;
    }
    if (rc != Z_OK) break;
  }
  out.damaged("gzip", rc == Z_BUF_ERROR ? "it ends early" : "the data are damaged");
}

// zstd: every frame (skippable ones too).
void unzstd(const std::string& packed, Output& out) {
  std::string error;
  switch (zstd_decompress(packed, out.limit(), out.bytes, &error)) {
    case ZstdResult::kDone: return;
    case ZstdResult::kPastLimit: out.too_big();
    case ZstdResult::kDamaged: out.damaged("zstd", error);
    case ZstdResult::kCutShort: out.damaged("zstd", "it ends early");
  }
}

// bzip2 and xz: every stream (pbzip2 output, `cat a.bz2 b.bz2`), as Python's bz2 and lzma
// read them: after a complete stream, bytes that do not start another (junk, zero padding) are
// ignored; a stream that starts and is then cut short or damaged is an error.

void bunzip2(const std::string& packed, Output& out) {
  char buf[kChunk];
  size_t pos = 0;
  for (bool first = true; pos < packed.size(); first = false) {
    bz_stream z{};
    if (BZ2_bzDecompressInit(&z, 0, 0) != BZ_OK) throw std::bad_alloc();
    std::unique_ptr<bz_stream, int (*)(bz_stream*)> end(&z, BZ2_bzDecompressEnd);
    const size_t in_size = std::min<size_t>(packed.size() - pos, std::numeric_limits<unsigned>::max());
    z.next_in = const_cast<char*>(packed.data() + pos);
    z.avail_in = static_cast<unsigned>(in_size);
    int rc = BZ_OK;
    size_t produced = 0;
    while (rc == BZ_OK) {
      z.next_out = buf;
      z.avail_out = sizeof buf;
      rc = BZ2_bzDecompress(&z);
      produced += sizeof buf - z.avail_out;
      out.append(buf, sizeof buf - z.avail_out);
      if (rc == BZ_OK && z.avail_in == 0 && z.avail_out != 0) out.damaged("bzip2", "it ends early");
    }
    if (rc != BZ_STREAM_END) {
      if (!first && produced == 0) return;  // trailing bytes, not a stream
      out.damaged("bzip2", "the data are damaged");
    }
    pos += in_size - z.avail_in;
  }
}

// The decoder's own memory is capped too: a crafted header may ask for a 4 GiB dictionary.
// lzma_auto_decoder also reads the older .lzma format, as Python's lzma does.
void unxz(const std::string& packed, Output& out) {
  char buf[kChunk];
  size_t pos = 0;
  for (bool first = true; pos < packed.size(); first = false) {
    lzma_stream z = LZMA_STREAM_INIT;
    if (lzma_auto_decoder(&z, uint64_t{1} << 30, 0) != LZMA_OK) throw std::bad_alloc();
    std::unique_ptr<lzma_stream, void (*)(lzma_stream*)> end(&z, lzma_end);
    z.next_in = reinterpret_cast<const uint8_t*>(packed.data() + pos);
    z.avail_in = packed.size() - pos;
    lzma_ret rc = LZMA_OK;
    size_t produced = 0;
    while (rc == LZMA_OK) {
      z.next_out = reinterpret_cast<uint8_t*>(buf);
      z.avail_out = sizeof buf;
      rc = lzma_code(&z, LZMA_FINISH);
      produced += sizeof buf - z.avail_out;
      out.append(buf, sizeof buf - z.avail_out);
    }
    if (rc != LZMA_STREAM_END) {
      if (!first && produced == 0 && rc != LZMA_BUF_ERROR) return;  // trailing bytes, not a stream
      out.damaged("xz", rc == LZMA_BUF_ERROR        ? "it ends early"
                        : rc == LZMA_MEMLIMIT_ERROR ? "it needs more than 1 GiB to decompress"
                        : rc == LZMA_FORMAT_ERROR   ? "no xz header"
                                                    : "the data are damaged");
    }
    pos = packed.size() - z.avail_in;
  }
}

// The bytes a compressed data file holds, as the datasets library reads `x.jsonl.gz` (by the
// extension). What the texts may take is bounded by the machine's memory: a few KB of gzip can
// claim gigabytes.
std::string decompressed(const fs::path& path, const std::string& packed) {
  if (packed.empty()) throw DataError(fmt::format("{}: the file is empty (not even a compression header)", path.string()));
  // Parsing takes a few times the text's size again: a quarter of the memory for the text.
  Output out(path, physical_memory_bytes() / 4);
  switch (compression_of(path)) {
    case Compression::kGzip:
      if (packed.size() < 2 || static_cast<uint8_t>(packed[0]) != 0x1F || static_cast<uint8_t>(packed[1]) != 0x8B)
        throw DataError(fmt::format("{}: not gzip-compressed (no gzip header); rename it without {} if it is plain text",
                                    path.string(), path.extension().string()));
      gunzip(packed, out);
      break;
    case Compression::kZstd: unzstd(packed, out); break;
    case Compression::kBzip2: bunzip2(packed, out); break;
    case Compression::kXz: unxz(packed, out); break;
    case Compression::kNone: return packed;
  }
  return std::move(out.bytes);
}

// "LINE:COLUMN" (both from 1, the column in bytes) of byte `offset` of `text`, for messages.
std::string line_and_column(std::string_view text, size_t offset) {
  const io::TextPosition at = io::position_of(text, offset);
  return fmt::format("{}:{}", at.line, at.column);
}

// The file's text without a UTF-8 byte-order mark (Excel and Notepad write one; pandas and the
// datasets library drop it, or the first column's name would carry it invisibly).
// Not UTF-8: pandas' read_csv and the datasets text loader stop with a UnicodeDecodeError; so
// does this, at the line and column (a Latin-1 export from Excel, usually).
std::string read_text(const fs::path& path) {
  std::string text = read_file_bytes(path);
  if (format_of(path) != path.extension().string()) text = decompressed(path, text);
  if (text.starts_with("\xEF\xBB\xBF")) text.erase(0, 3);
  if (const size_t bad = io::invalid_utf8_at(text); bad != std::string::npos) {
    throw DataError(fmt::format("{}:{}: not valid UTF-8 (byte 0x{:02X}); save the file as UTF-8 (e.g. iconv -f "
                                "latin1 -t utf-8)",
                                path.string(), line_and_column(text, bad), static_cast<unsigned char>(text[bad])));
  }
  return text;
}

// The tutorial read CSV files with pandas (AutoTrain's {split}.csv, and the datasets library's
// csv loader): its defaults decide what a cell means.
// - These cells are missing values (read_csv's default na_values, quoted or not), later
//   fillna("")'d: a row whose text is "NA" or "null" has no text, as in pandas.
const std::set<std::string, std::less<>> kPandasNaValues = {
    "",    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA",       "NULL", "NaN",    "None",     "n/a",  "nan",  "null"};

// - A column without a name is "Unnamed: i" (i its position), and a repeated name is renamed as
//   pandas' C parser renames it ("text", "text" -> "text", "text.1", skipping a name the header
//   already has; named columns first, so a given name is kept and an unnamed one renamed).
std::vector<std::string> pandas_column_names(std::vector<std::string> names) {
  std::vector<size_t> order, unnamed;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) {
      names[i] = fmt::format("Unnamed: {}", i);
      unnamed.push_back(i);
    } else {
      order.push_back(i);
    }
  }
  order.insert(order.end(), unnamed.begin(), unnamed.end());
  std::map<std::string, size_t> counts;
  for (const size_t i : order) {
    const std::string old = names[i];
    std::string col = old;
    size_t cur = counts[col];
    while (cur > 0) {
      counts[old] = cur + 1;
      col = fmt::format("{}.{}", old, cur);
      if (std::find(names.begin(), names.end(), col) != names.end())
        ++cur;
      else
        cur = counts[col];
    }
    names[i] = col;
    counts[col] = cur + 1;
  }
  return names;
}

// RFC 4180: quoted fields may hold commas, newlines and doubled quotes. The first record names
// the columns.
std::vector<Row> parse_csv(const fs::path& path, const std::string& text, std::vector<std::string>* columns = nullptr) {
  std::vector<std::vector<std::string>> records;
  std::vector<size_t> lines;
  std::vector<std::string> rec;
  std::string field;
  bool quoted = false, any = false;
  bool blank = true;  // the record so far is spaces and tabs only (no comma, no quote)
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
      blank = false;
    } else if (c == ',') {
      rec.push_back(std::move(field));
      field.clear();
      any = true;
      blank = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      // A line of spaces and tabs only is a blank line to pandas (skip_blank_lines), not a row.
      if ((any || !field.empty()) && !blank) {
        rec.push_back(std::move(field));
        records.push_back(std::move(rec));
        lines.push_back(rec_line);
      }
      rec.clear();
      field.clear();
      any = false;
      blank = true;
      rec_line = ++line;
    } else {
      field += c;
      any = true;
      blank = blank && (c == ' ' || c == '\t');
    }
  }
  if (quoted) throw DataError(fmt::format("{}:{}: unterminated quoted field", path.string(), rec_line));
  if ((any || !field.empty()) && !blank) {
    rec.push_back(std::move(field));
    records.push_back(std::move(rec));
    lines.push_back(rec_line);
  }
  std::vector<Row> rows;
  if (records.empty()) return rows;
  const std::vector<std::string> header = pandas_column_names(records[0]);
  if (columns) *columns = header;
  for (size_t r = 1; r < records.size(); ++r) {
    // A short row's missing cells are missing values, as pandas reads them (spreadsheets drop
    // trailing empty cells); a long one is an error there too.
    if (records[r].size() > header.size())
      throw DataError(fmt::format("{}:{}: {} fields, but the header has {}; quote cells that hold commas", path.string(),
                                  lines[r], records[r].size(), header.size()));
    json obj = json::object();
    for (size_t c = 0; c < header.size(); ++c) {
      if (c >= records[r].size()) {
        obj[header[c]] = nullptr;
        continue;
      }
      std::string& cell = records[r][c];
      obj[header[c]] = kPandasNaValues.count(cell) ? json(nullptr) : json(std::move(cell));
    }
    rows.push_back({lines[r], std::move(obj)});
  }
  return rows;
}

// Python's json module writes NaN, Infinity and -Infinity for non-finite floats (json.dumps,
// pandas' to_json does not), and the datasets library reads them. JSON has no such literals: as
// missing values they become null (a NaN text cell is an empty row there too). Returns false
// when the text has none outside strings.
struct LiteralReplaced {
  size_t end;          // where the null written for it ends in the new text
  ptrdiff_t growth;    // its length minus the literal's (NaN: +1; Infinity: -4; -Infinity: -5)
};

bool non_finite_literals_to_null(std::string& text, std::vector<LiteralReplaced>* replaced = nullptr) {
  std::string out;
  bool changed = false, in_string = false;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) out += text[++i];
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    const std::string_view rest = std::string_view(text).substr(i);
    const bool boundary_before = out.empty() || std::string_view(" \t\r\n[{:,").find(out.back()) != std::string_view::npos;
    size_t len = 0;
    for (std::string_view literal : {"-Infinity", "Infinity", "NaN"})
      if (boundary_before && rest.starts_with(literal)) {
        len = literal.size();
        break;
      }
    const bool boundary_after =
        len > 0 && (i + len == text.size() || std::string_view(" \t\r\n]},").find(text[i + len]) != std::string_view::npos);
    if (boundary_after) {
      out += "null";
      if (replaced) replaced->push_back({out.size(), 4 - static_cast<ptrdiff_t>(len)});
      i += len - 1;
      changed = true;
      continue;
    }
    out += c;
  }
  if (changed) text = std::move(out);
  return changed;
}

json parse_json_text_or_python(std::string_view text) {
  try {
    return json::parse(text);
  } catch (const json::exception&) {
    std::string fixed(text);
    std::vector<LiteralReplaced> replaced;
    if (!non_finite_literals_to_null(fixed, &replaced)) throw;
    try {
      return json::parse(fixed);
    } catch (const json::parse_error& e) {
      // The real mistake is elsewhere: its error, at its position in the file's own text (the
      // first error of the original text would point at the NaN, which is fine).
      ptrdiff_t growth = 0;
      for (const auto& r : replaced)
        if (r.end <= e.byte) growth += r.growth;
      const size_t at = static_cast<size_t>(std::max<ptrdiff_t>(0, static_cast<ptrdiff_t>(e.byte) - growth));
      const io::TextPosition p = io::position_of(text, at > 0 ? at - 1 : 0);
      nlohmann::detail::position_t pos;
      pos.chars_read_total = at;
      pos.chars_read_current_line = p.column;
      pos.lines_read = p.line - 1;
      std::string what = e.what();
      const size_t colon = what.find(": ", what.find(", column "));
      throw json::parse_error::create(e.id, pos, colon == std::string::npos ? what : what.substr(colon + 2), nullptr);
    }
  }
}

std::vector<Row> parse_jsonl(const fs::path& path, const std::string& text) {
  std::vector<Row> rows;
  std::istringstream in(text);
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      rows.push_back({n, parse_json_text_or_python(line)});
    } catch (const json::exception& e) {
      throw DataError(fmt::format("{}:{}: not valid JSON: {}", path.string(), n, io::json_error_text(e)));
    }
  }
  return rows;
}

// .json and .jsonl hold either layout, as the datasets library reads them: one document (an array
// of rows, or {"data": [...]}) or JSON Lines (one row per line). A document that is a single
// object without "data" is a one-line JSON Lines file.
std::vector<Row> parse_json_any(const fs::path& path, const std::string& text) {
  // The JSON parser takes a NUL byte for the end of the input: the rows after it would be dropped
  // without a word (a 200-row file read as 1 row). JSON text cannot hold one (it is written \u0000).
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    throw DataError(fmt::format("{}:{}: a NUL byte, which JSON text cannot hold (written \\u0000 inside a string); "
                                "is this a binary or damaged file?",
                                path.string(), line_and_column(text, nul)));
  }
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  json j;
  try {
    j = parse_json_text_or_python(text);
  } catch (const json::exception& e) {
    // Not one document: JSON Lines, unless it opens an array (then the error is the array's).
    if (text[first] == '[') throw DataError(fmt::format("{}: not valid JSON: {}", path.string(), io::json_error_text(e)));
    return parse_jsonl(path, text);
  }
  // datasets' json loader also takes an object whose "data" field holds the rows (field="data").
  if (j.is_object() && j.contains("data") && j["data"].is_array()) j = std::move(j["data"]);
  if (j.is_object()) return {{1, std::move(j)}};
  if (!j.is_array())
    throw DataError(fmt::format("{}: expected a JSON array of row objects, {{\"data\": [...]}} or one object per line",
                                path.string()));
  std::vector<Row> rows;
  rows.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) rows.push_back({i + 1, std::move(j[i])});
  return rows;
}

}  // namespace

std::optional<std::string> cell_text(const nlohmann::json& cell) {
  if (cell.is_string()) return cell.get<std::string>();
  if (cell.is_boolean()) return cell.get<bool>() ? "True" : "False";  // as pandas (and Python's str()) write them
  if (cell.is_number()) return cell.dump();
  return std::nullopt;
}

std::vector<Row> read_rows(const fs::path& path) {
  std::string ext = format_of(path);
  if (ext != ".csv" && ext != ".json" && ext != ".jsonl")
    throw DataError(fmt::format("{}: unknown format '{}'; use .jsonl, .json or .csv (each also .gz, .zst, .bz2 or .xz), "
                                ".txt (one example per line), or .parquet, .arrow or .feather",
                                path.string(), ext));
  std::string text = read_text(path);
  if (ext == ".csv") return parse_csv(path, text);
  return parse_json_any(path, text);
}

std::vector<std::string> read_csv_columns(const fs::path& path) {
  std::vector<std::string> columns;
  parse_csv(path, read_text(path), &columns);
  return columns;
}

std::vector<std::string> read_text_lines(const fs::path& path) {
  std::string text = read_text(path);
  std::vector<std::string> lines;
  size_t start = 0;
  // Line ends as Python's text mode reads them (what the datasets library sees): \n, \r\n, \r.
  while (start < text.size()) {
    size_t end = text.find_first_of("\r\n", start);
    if (end == std::string::npos) end = text.size();
    lines.emplace_back(text, start, end - start);
    start = end + (text.compare(end, 2, "\r\n") == 0 ? 2 : 1);
  }
  return lines;
}

}  // namespace autotrain::data

namespace autotrain::data {

std::vector<std::string> read_text_examples(const fs::path& path, std::string_view sample_by) {
  if (sample_by == "line" || sample_by.empty()) return read_text_lines(path);
  // The datasets library reads in Python's text mode: \r\n and a lone \r become \n.
  std::string text = read_text(path), normalized;
  normalized.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\r') {
      normalized += text[i];
    } else if (i + 1 >= text.size() || text[i + 1] != '\n') {
      normalized += '\n';
    }
  }
  if (sample_by == "document") return {normalized};
  if (sample_by != "paragraph")
    throw DataError(fmt::format("TEXT_SAMPLE_BY={}: use line, paragraph or document", sample_by));
  // As datasets' sample_by="paragraph": split at every "\n\n", empty pieces dropped (not rows),
  // the last paragraph keeping its line end.
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= normalized.size()) {
    size_t end = normalized.find("\n\n", start);
    if (end == std::string::npos) end = normalized.size();
    if (end > start) out.emplace_back(normalized, start, end - start);
    start = end + 2;
  }
  return out;
}

}  // namespace autotrain::data
