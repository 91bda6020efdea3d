// One text column of a Parquet file: the format datasets are stored in on the Hugging Face Hub
// (`data/train-00000-of-00001.parquet`, what `huggingface-cli download --repo-type dataset`
// fetches for most datasets) and what `datasets`' to_parquet writes.
//
// Only what reading a top-level string column needs: the file footer (Thrift compact protocol),
// data pages v1 and v2, the PLAIN, dictionary and DELTA (DELTA_LENGTH_BYTE_ARRAY,
// DELTA_BYTE_ARRAY: Spark's and parquet-mr's v2 writers) encodings, definition levels of an
// optional column, and every codec pyarrow writes: uncompressed, Snappy, gzip, zstd, LZ4
// (LZ4_RAW, and Hadoop-framed LZ4 of older writers) and Brotli. Anything else (a nested text
// column, LZO, a chunk in another file) is refused with what the file holds and how to convert
// it. Every offset and size is checked against the file: the reader is fuzzed
// (tests/fuzz/fuzz_parquet.cpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autotrain/data/columnar.h"

namespace autotrain::data {

// Reads `column` from the Parquet file held in `bytes`; `where` names it in errors. A missing
// column is no error (found = false, columns listed): the caller words that one. The texts may
// take at most `max_bytes` of memory (0: the machine's physical memory); a file that decodes to
// more is refused before it is decoded. Throws DataError.
ColumnText read_parquet_text(std::string_view bytes, const std::string& column, const std::string& where,
                              uint64_t max_bytes = 0);

// The same from a file (memory-mapped). Throws DataError naming the file.
ColumnText read_parquet_text_file(const std::filesystem::path& path, const std::string& column);

}  // namespace autotrain::data
