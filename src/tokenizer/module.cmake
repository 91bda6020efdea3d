# tokenizer: tokenizer.json (BPE and its pipeline) and SentencePiece behind one interface.
# No LibTorch, so that it builds and tests in seconds. ICU supplies Unicode properties and
# normalization (Debian libicu-dev), PCRE2 the regexes of Split/Replace.
pkg_check_modules(ICU REQUIRED IMPORTED_TARGET icu-uc)

add_library(autotrain_tokenizer STATIC
  ${CMAKE_CURRENT_LIST_DIR}/unicode.cpp
  ${CMAKE_CURRENT_LIST_DIR}/unicode_regex.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pieces.cpp
  ${CMAKE_CURRENT_LIST_DIR}/normalizers.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pre_tokenizers.cpp
  ${CMAKE_CURRENT_LIST_DIR}/bpe.cpp
  ${CMAKE_CURRENT_LIST_DIR}/added_vocab.cpp
  ${CMAKE_CURRENT_LIST_DIR}/decoders.cpp
  ${CMAKE_CURRENT_LIST_DIR}/hf_tokenizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sp_tokenizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tokenizer.cpp)
target_include_directories(autotrain_tokenizer PUBLIC ${AUTOTRAIN_INCLUDE})
target_link_libraries(autotrain_tokenizer
  PUBLIC fmt::fmt
  PRIVATE nlohmann_json::nlohmann_json PkgConfig::PCRE2 PkgConfig::SENTENCEPIECE PkgConfig::ICU Threads::Threads)

# The `tokenize` subcommand.
target_sources(autotrain PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../cli/cmd_tokenize.cpp)
target_link_libraries(autotrain PRIVATE autotrain_tokenizer)
