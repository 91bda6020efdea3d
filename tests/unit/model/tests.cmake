# model: config.json and model folders (unit, no LibTorch); Falcon and `autotrain eval` against
# transformers run at test time (reference).
autotrain_add_gtest(test_model_config
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/config_test.cpp
  LIBS autotrain_model_config
  LABELS unit)
autotrain_add_gtest(test_model_reference
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/falcon_reference_test.cpp
  LIBS autotrain_model
  LABELS reference
  TORCH)
# libtorch.so exports its own copy of std::filesystem; listed before libstdc++ it wins symbol
# lookup and its remove_all crashes (TempDir cleanup). Make libstdc++ the first dependency.
target_link_options(test_model_reference BEFORE PRIVATE "LINKER:--no-as-needed" "-lstdc++")
autotrain_add_gtest(test_model
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/model_test.cpp
  LIBS autotrain_model
  LABELS unit
  TORCH)
target_link_options(test_model BEFORE PRIVATE "LINKER:--no-as-needed" "-lstdc++")
# On a CUDA machine: the same reference models on the GPU (exit 77, skipped, without one).
autotrain_add_gtest(test_model_gpu
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/falcon_gpu_test.cpp
  LIBS autotrain_model autotrain_device
  LABELS gpu reference
  TORCH)
target_link_options(test_model_gpu BEFORE PRIVATE "LINKER:--no-as-needed" "-lstdc++")
# `generate` and `chat` (the CLI) against transformers' generate() + PEFT.
autotrain_add_gtest(generate_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/generate_test.cpp
  LIBS autotrain_model nlohmann_json::nlohmann_json
  LABELS reference
  TORCH)
target_link_options(generate_test BEFORE PRIVATE "LINKER:--no-as-needed" "-lstdc++")
add_dependencies(generate_test autotrain)
