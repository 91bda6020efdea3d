# Unit tests of src/config (no LibTorch).
autotrain_add_gtest(config_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/envfile_test.cpp ${CMAKE_CURRENT_LIST_DIR}/config_test.cpp
  LIBS autotrain_config)
