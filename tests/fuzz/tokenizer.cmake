# Tokenizer fuzzer: tokenizer.json loading, encoding and decoding (instrumentation comes from
# the top-level AUTOTRAIN_BUILD_FUZZERS flags).
autotrain_add_fuzzer(fuzz_tokenizer
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_tokenizer.cpp
  LIBS autotrain_tokenizer
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/tokenizer_seeds)
target_include_directories(fuzz_tokenizer PRIVATE ${PROJECT_SOURCE_DIR}/src/tokenizer)
