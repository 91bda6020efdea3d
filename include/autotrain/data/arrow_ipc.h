// One text column of an Arrow IPC file: what `datasets`' save_to_disk writes
// (`train/data-00000-of-00001.arrow`, the streaming format) and pyarrow's Feather v2 / IPC file
// format ("ARROW1"). Only what reading a top-level string column needs: the messages' flatbuffer
// headers (Schema, RecordBatch), the nodes and buffers of the fields before it, and zstd buffer
// compression; dictionary-encoded, view-typed or LZ4-compressed text columns are refused saying
// what the file holds. Every offset is checked against the file (fuzzed: tests/fuzz).
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
