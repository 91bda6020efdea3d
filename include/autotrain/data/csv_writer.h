// The CSV that `autotrain data` writes as DATA_FILE, in the format the tutorial's dataload.py
// produced (datasets -> pandas -> Python's csv module): a header line, one record per row,
// QUOTE_MINIMAL quoting (fields holding a comma, a quote or LF are quoted, inner quotes
// doubled; a lone empty field is written as ""), UTF-8, "\n" line ends. No LibTorch.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace autotrain::data {

// One field as Python's csv writer (QUOTE_MINIMAL) writes it in a one-column file.
std::string csv_field(std::string_view value);

// The whole file's bytes: `column` as the header, then every row.
std::string render_single_column_csv(const std::string& column, const std::vector<std::string>& rows);

// The whole file, written atomically.
void write_single_column_csv(const std::filesystem::path& path, const std::string& column,
                             const std::vector<std::string>& rows);

}  // namespace autotrain::data
