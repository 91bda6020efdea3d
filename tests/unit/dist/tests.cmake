# dist: the launcher environment (no LibTorch) and the collectives over a real TCPStore.
autotrain_add_gtest(dist_world_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/world_test.cpp
  LIBS autotrain_dist_world)
autotrain_add_gtest(dist_process_group_test TORCH
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/process_group_test.cpp
  LIBS autotrain_dist)
