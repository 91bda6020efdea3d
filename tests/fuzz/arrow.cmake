# Arrow IPC reader fuzzer: flatbuffer headers, field layouts and buffers on arbitrary file images
# (seeds: small streams and files pyarrow wrote).
autotrain_add_fuzzer(fuzz_arrow
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_arrow.cpp
  LIBS autotrain_data
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/arrow_seeds)
