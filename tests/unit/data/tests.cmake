autotrain_add_gtest(data_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/csv_writer_test.cpp
  LIBS autotrain_data nlohmann_json::nlohmann_json)
