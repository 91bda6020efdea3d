// Columnar data files: Parquet (the Hub's format) and Arrow IPC (save_to_disk, Feather v2). Both
// readers give one text column; this picks the reader by extension, for `data` and `eval` alike.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autotrain/data/error.h"

namespace autotrain::data {

struct ColumnText {
  std::vector<std::string> columns;                // the top-level column names, in file order
  bool found = false;                              // `column` is one of them
  std::vector<std::optional<std::string>> values;  // one per row; nullopt for a null cell
};

// ".parquet", ".arrow" or ".feather": files that carry their own compression (a ".gz" around
// them is not read).
bool is_columnar_format(std::string_view extension);

// `column` of a .parquet, .arrow or .feather file (read_parquet_text_file / read_arrow_text_file).
// Throws DataError.
ColumnText read_column_text_file(const std::filesystem::path& path, const std::string& column);

}  // namespace autotrain::data
