# End-to-end tests of the CLI (they run build/autotrain; see AUTOTRAIN_BIN in AUTOTRAIN_TEST_ENV).
autotrain_add_gtest(cli_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_test.cpp
  LIBS nlohmann_json::nlohmann_json
  LABELS e2e)
add_dependencies(cli_test autotrain)

# data + train on the embedded tiny default, with PEFT as the oracle of the trained adapter.
autotrain_add_gtest(train_e2e_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/train_test.cpp
  LIBS autotrain_safetensors nlohmann_json::nlohmann_json
  LABELS e2e)
add_dependencies(train_e2e_test autotrain)
