# LoRA: PEFT parity (reference, runs transformers + peft at test time) and unit properties.
autotrain_add_gtest(lora_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/lora_test.cpp
  LIBS autotrain_lora autotrain_qlora_loading autotrain_model autotrain_config nlohmann_json::nlohmann_json
  LABELS reference TORCH)
add_dependencies(lora_test autotrain)  # LoraCli runs `autotrain tiny` and `train --dry-run`

# `autotrain merge` against PEFT's merge_and_unload() + save_pretrained() (reference).
autotrain_add_gtest(lora_merge_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/merge_test.cpp
  LIBS autotrain_lora autotrain_model nlohmann_json::nlohmann_json
  LABELS reference TORCH)
add_dependencies(lora_merge_test autotrain)  # the CLI cases run the binary
