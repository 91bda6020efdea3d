# data: readers, DATA_PATH resolution, block building, the token cache and `autotrain data`.
# data_test and data_prepare_test need no Python; data_reference_test compares blocks with
# transformers' tokenizer and AutoTrain 0.6.44's grouping (tests/reference/data/).
autotrain_add_gtest(data_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/csv_writer_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/readers_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/blocks_test.cpp
  LIBS autotrain_data autotrain_model_config autotrain_tokenizer nlohmann_json::nlohmann_json)

# The Parquet reader against pyarrow's reading of the files pyarrow, datasets and pandas write
# (tests/reference/data/parquet_reference.py), and damaged files.
autotrain_add_gtest(data_parquet_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/parquet_test.cpp
  LIBS autotrain_data autotrain_config autotrain_tokenizer nlohmann_json::nlohmann_json)

# The Arrow IPC reader (save_to_disk folders, pyarrow streams and files) against pyarrow.
autotrain_add_gtest(data_arrow_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/arrow_test.cpp
  LIBS autotrain_data nlohmann_json::nlohmann_json)

autotrain_add_gtest(data_prepare_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/prepare_test.cpp
  LIBS autotrain_data autotrain_config autotrain_tokenizer nlohmann_json::nlohmann_json)

autotrain_add_gtest(data_reference_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/reference_test.cpp
  LIBS autotrain_data autotrain_config autotrain_tokenizer nlohmann_json::nlohmann_json
  LABELS reference)

# `autotrain data` itself (runs the binary named by AUTOTRAIN_BIN).
autotrain_add_gtest(data_cli_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_data_test.cpp
  LIBS autotrain_config autotrain_io autotrain_tokenizer nlohmann_json::nlohmann_json
  LABELS e2e)
add_dependencies(data_cli_test autotrain)
