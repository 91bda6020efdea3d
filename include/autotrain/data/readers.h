// Dataset files as rows: .jsonl and .json (an array, {"data": [...]} or JSON Lines) and .csv
// (RFC 4180, the header names the columns), plus .txt (by line, paragraph or whole file), each
// also compressed (.gz, .zst, .bz2, .xz). Shared by `data` and `eval`.
// No LibTorch and no {fmt} here: LibTorch files (eval) include it.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "autotrain/data/error.h"

namespace autotrain::data {

struct Row {
  size_t line = 0;       // 1-based: the line (jsonl), the record's first line (csv), the index + 1 (json)
  nlohmann::json value;  // an object for csv; whatever the file holds for json/jsonl
};

// The rows of a .jsonl, .json or .csv file (decided by the extension; .json and .jsonl each take
// a JSON array, {"data": [...]} or JSON Lines, as the datasets library does). A UTF-8 byte-order
// mark is dropped. CSV cells are strings, or null where pandas' read_csv sees a missing value
// ("", "NA", "null", "nan", ...), and repeated column names are renamed as pandas renames them
// ("text", "text" -> "text", "text.1"). Throws DataError naming the file (and line) for unreadable files, invalid
// JSON, ragged or unterminated CSV, and any other extension.
std::vector<Row> read_rows(const std::filesystem::path& path);

// The text of a JSON cell in a text column, as pandas writes it to a CSV: a string as it is, a
// boolean True/False, a number as JSON writes it. nullopt for null, a list or an object (the
// caller skips a null and refuses the others).
std::optional<std::string> cell_text(const nlohmann::json& cell);

// The column names of a .csv file (its header), also when it has no rows. Throws DataError.
std::vector<std::string> read_csv_columns(const std::filesystem::path& path);

// The lines of a .txt file, one example each ("\n", "\r\n" or "\r" line ends, as Python's text
// mode reads them; a final line without one counts). Empty lines are kept (the caller skips and
// counts them). Throws DataError.
std::vector<std::string> read_text_lines(const std::filesystem::path& path);

// The examples of a .txt file by TEXT_SAMPLE_BY, as the datasets library's text loader cuts them
// (sample_by): "line" (read_text_lines), "paragraph" (split at "\n\n", empty pieces dropped) or
// "document" (the whole file, one example); line ends as Python's text mode reads them. Unlike
// datasets (which decodes .txt as utf-8, not utf-8-sig) a byte-order mark is dropped: it is no
// text to train on. Throws DataError.
std::vector<std::string> read_text_examples(const std::filesystem::path& path, std::string_view sample_by);

// The whole file as bytes. Throws DataError naming the file.
std::string read_file_bytes(const std::filesystem::path& path);

// The compression suffixes read (as the datasets library reads them, in any case): ".gz",
// ".gzip", ".zst", ".zstd", ".bz2", ".xz".
std::vector<std::string> compression_suffixes();

// A data file's format by its extension, a compression suffix aside, as the datasets library
// decides it: "x.jsonl.gz" and "x.jsonl.xz" are ".jsonl" (read_rows and the .txt readers
// decompress them), "x.jsonl" is ".jsonl".
std::string format_of(const std::filesystem::path& path);

// The name without its format and compression extensions: "train.jsonl.gz" -> "train".
std::string data_stem(const std::filesystem::path& path);

}  // namespace autotrain::data
