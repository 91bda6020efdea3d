#include "autotrain/data/csv_writer.h"

#include "autotrain/io/atomic_file.h"

namespace autotrain::data {

std::string csv_field(std::string_view value) {
  // A record made of one empty field would read back as an empty line; Python writes "".
  if (value.empty()) return "\"\"";
  // Python's csv module quotes a field holding the delimiter, the quote or a character of the
  // line terminator ("\n"); a lone "\r" stays unquoted.
  if (value.find_first_of(",\"\n") == std::string_view::npos) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string render_single_column_csv(const std::string& column, const std::vector<std::string>& rows) {
  std::string out = csv_field(column) + "\n";
  for (const auto& r : rows) out += csv_field(r) + "\n";
  return out;
}

void write_single_column_csv(const std::filesystem::path& path, const std::string& column,
                             const std::vector<std::string>& rows) {
  const std::string out = render_single_column_csv(column, rows);
  if (!path.parent_path().empty()) std::filesystem::create_directories(path.parent_path());
  io::write_file_atomic(path, out);
}

}  // namespace autotrain::data
