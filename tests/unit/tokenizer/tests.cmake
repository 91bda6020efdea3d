# Tokenizer tests. Unit tests need nothing but the sources; the Falcon vectors read
# ../shared (skipped when absent); reference tests run the Python `tokenizers` and
# `sentencepiece` packages at test time (AUTOTRAIN_PYTHON).
autotrain_add_gtest(tokenizer_unit_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/components_test.cpp ${CMAKE_CURRENT_LIST_DIR}/loader_test.cpp
  LIBS autotrain_tokenizer nlohmann_json::nlohmann_json)
target_include_directories(tokenizer_unit_test PRIVATE ${PROJECT_SOURCE_DIR}/src/tokenizer)

autotrain_add_gtest(tokenizer_falcon_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/falcon_vectors_test.cpp
  LIBS autotrain_tokenizer)

autotrain_add_gtest(tokenizer_reference_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/reference_test.cpp
  LIBS autotrain_tokenizer nlohmann_json::nlohmann_json PkgConfig::SENTENCEPIECE
  LABELS reference)
target_include_directories(tokenizer_reference_test PRIVATE ${PROJECT_SOURCE_DIR}/src/tokenizer)
