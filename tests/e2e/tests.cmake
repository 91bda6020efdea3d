# End-to-end tests of the CLI (they run build/autotrain; see AUTOTRAIN_BIN in AUTOTRAIN_TEST_ENV).
autotrain_add_gtest(cli_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_test.cpp
  LIBS nlohmann_json::nlohmann_json
  LABELS e2e)
add_dependencies(cli_test autotrain)
