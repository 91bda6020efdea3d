# data: datasets for `autotrain data` (issue #6). So far: the DATA_FILE CSV writer and the row
# readers (jsonl/json/csv/txt) that `eval` shares. No LibTorch.
add_library(autotrain_data STATIC
  ${CMAKE_CURRENT_LIST_DIR}/csv_writer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/readers.cpp)
target_include_directories(autotrain_data PUBLIC ${AUTOTRAIN_INCLUDE})
# The readers' header exposes nlohmann::json; the rest is link-only, since the LibTorch library
# autotrain_model links this one.
target_link_libraries(autotrain_data PUBLIC nlohmann_json::nlohmann_json PRIVATE autotrain_io fmt::fmt)
