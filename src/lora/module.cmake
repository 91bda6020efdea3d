# lora: LoRA layers with PEFT semantics and PEFT adapter files.
add_library(autotrain_lora STATIC ${CMAKE_CURRENT_LIST_DIR}/lora.cpp)
target_include_directories(autotrain_lora PUBLIC ${AUTOTRAIN_INCLUDE})
target_link_libraries(autotrain_lora PUBLIC autotrain_model PRIVATE autotrain_io nlohmann_json::nlohmann_json)
autotrain_use_torch(autotrain_lora)
