# End-to-end tests of the CLI (they run build/autotrain; see AUTOTRAIN_BIN in AUTOTRAIN_TEST_ENV).
autotrain_add_gtest(cli_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_test.cpp
  LIBS nlohmann_json::nlohmann_json
  LABELS e2e)
add_dependencies(cli_test autotrain)

# data + train on the embedded tiny default, with PEFT as the oracle of the trained adapter.
autotrain_add_gtest(train_e2e_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/train_test.cpp
  LIBS autotrain_safetensors nlohmann_json::nlohmann_json fmt::fmt
  LABELS e2e)
add_dependencies(train_e2e_test autotrain)

# Downloads against a fake Hub (tests/reference/hub/fake_hub.py), huggingface_hub as the oracle.
autotrain_add_gtest(hub_e2e_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/hub_test.cpp
  LIBS autotrain_hub nlohmann_json::nlohmann_json
  LABELS e2e reference)
add_dependencies(hub_e2e_test autotrain)

# On a CUDA machine: NF4 + LoRA + fp16 + accumulation against the CPU run (exit 77 without one).
autotrain_add_gtest(train_gpu_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/train_gpu_test.cpp
  LIBS nlohmann_json::nlohmann_json autotrain_device
  LABELS gpu e2e
  TORCH)
target_link_options(train_gpu_test BEFORE PRIVATE "LINKER:--no-as-needed" "-lstdc++")
add_dependencies(train_gpu_test autotrain)

# `cmake --install` into a temporary prefix: the installed binary runs and finds its CUDA backend.
if(TARGET autotrain_cuda)
  add_test(NAME install_test COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/install_test.sh ${PROJECT_BINARY_DIR})
  set_tests_properties(install_test PROPERTIES LABELS e2e TIMEOUT 300)
endif()
