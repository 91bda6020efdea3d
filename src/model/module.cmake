# model: model folders (local or Hugging Face cache), Falcon's config.json, and
# FalconForCausalLM on ATen with its loss, loader and the `eval` subcommand.

# The parts without LibTorch: config.json and folder resolution (fast to build and test).
add_library(autotrain_model_config STATIC
  ${CMAKE_CURRENT_LIST_DIR}/falcon_config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/model_dir.cpp)
target_include_directories(autotrain_model_config PUBLIC ${AUTOTRAIN_INCLUDE})
target_link_libraries(autotrain_model_config PUBLIC nlohmann_json::nlohmann_json PRIVATE fmt::fmt)

add_library(autotrain_model STATIC
  ${CMAKE_CURRENT_LIST_DIR}/ops.cpp
  ${CMAKE_CURRENT_LIST_DIR}/falcon.cpp
  ${CMAKE_CURRENT_LIST_DIR}/loss.cpp
  ${CMAKE_CURRENT_LIST_DIR}/loader.cpp)
target_include_directories(autotrain_model PUBLIC ${AUTOTRAIN_INCLUDE})
target_link_libraries(autotrain_model PUBLIC autotrain_model_config autotrain_safetensors_torch ${TORCH_LIBRARIES})
autotrain_use_torch(autotrain_model)
