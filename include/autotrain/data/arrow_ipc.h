// One text column of an Arrow IPC file: what `datasets`' save_to_disk writes
// (`train/data-00000-of-00001.arrow`, the streaming format), and the IPC file format ("ARROW1";
// Feather v2) that pyarrow, pandas and polars write, read through its footer as pyarrow reads
// it. Only what reading a top-level string column needs: the messages' flatbuffer headers
// (Schema, DictionaryBatch, RecordBatch), the nodes and buffers of the fields before it, a
// string, large_string or string_view text column, plain or dictionary-encoded (categorical,
// with delta and replacement dictionaries), and both buffer codecs (LZ4 frames, Feather's
// default, and zstd); other columns are refused saying what they hold. Every offset is checked
// against the file (fuzzed: tests/fuzz).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "autotrain/data/columnar.h"

namespace autotrain::data {

// Reads `column` from the Arrow IPC stream or file held in `bytes`; `where` names it in errors. A
// missing column is no error (found = false, columns listed). The texts may take at most
// `max_bytes` of memory (0: the machine's physical memory). Throws DataError.
ColumnText read_arrow_text(std::string_view bytes, const std::string& column, const std::string& where,
                            uint64_t max_bytes = 0);

// The same from a file (memory-mapped). Throws DataError naming the file.
ColumnText read_arrow_text_file(const std::filesystem::path& path, const std::string& column);

}  // namespace autotrain::data
