autotrain_add_gtest(io_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/io_test.cpp LIBS autotrain_io nlohmann_json::nlohmann_json)
