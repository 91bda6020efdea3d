#include "autotrain/data/columnar.h"

#include "autotrain/data/arrow_ipc.h"
#include "autotrain/data/parquet.h"

namespace autotrain::data {

bool is_columnar_format(std::string_view extension) {
  return extension == ".parquet" || extension == ".arrow" || extension == ".feather";
}

ColumnText read_column_text_file(const std::filesystem::path& path, const std::string& column) {
  return path.extension() == ".parquet" ? read_parquet_text_file(path, column) : read_arrow_text_file(path, column);
}

}  // namespace autotrain::data
