# Parquet reader fuzzer: footers, page headers, levels and codecs on arbitrary file images
# (seeds: small files pyarrow wrote with each codec, page version and encoding we read).
autotrain_add_fuzzer(fuzz_parquet
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_parquet.cpp
  LIBS autotrain_data
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/parquet_seeds)
