# lora: LoRA layers with PEFT semantics and PEFT adapter files.
add_library(autotrain_lora STATIC ${CMAKE_CURRENT_LIST_DIR}/lora.cpp ${CMAKE_CURRENT_LIST_DIR}/merge_command.cpp)
target_include_directories(autotrain_lora PUBLIC ${AUTOTRAIN_INCLUDE})
target_link_libraries(autotrain_lora PUBLIC autotrain_model PRIVATE autotrain_config autotrain_io nlohmann_json::nlohmann_json)
autotrain_use_torch(autotrain_lora)
# `autotrain merge` (the CLI file includes no LibTorch header).
target_sources(autotrain PRIVATE ${PROJECT_SOURCE_DIR}/src/cli/cmd_merge.cpp)
target_link_libraries(autotrain PRIVATE autotrain_lora)

# Loading for the QLoRA path (4-bit bases, adapters), used by `eval`, `generate` and `chat` through a hook.
if(TARGET autotrain_quant_linear)
  add_library(autotrain_qlora_loading STATIC ${CMAKE_CURRENT_LIST_DIR}/qlora_loading.cpp)
  target_include_directories(autotrain_qlora_loading PUBLIC ${AUTOTRAIN_INCLUDE})
  target_link_libraries(autotrain_qlora_loading PUBLIC autotrain_lora autotrain_quant_linear autotrain_model)
  autotrain_use_torch(autotrain_qlora_loading)
  target_link_libraries(autotrain PRIVATE autotrain_qlora_loading)
  # `generate` and `chat` load through it too (cmd_generate.cpp includes no LibTorch header).
  target_sources(autotrain PRIVATE ${PROJECT_SOURCE_DIR}/src/cli/cmd_generate.cpp)
endif()
