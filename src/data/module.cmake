# data: datasets for `autotrain data` (issue #6). So far: the DATA_FILE CSV writer. No LibTorch.
add_library(autotrain_data STATIC ${CMAKE_CURRENT_LIST_DIR}/csv_writer.cpp)
target_include_directories(autotrain_data PUBLIC ${AUTOTRAIN_INCLUDE})
target_link_libraries(autotrain_data PRIVATE autotrain_io)
