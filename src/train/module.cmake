# train: the training loop and what it writes (issue #6), the embedded tiny default, and the
# `train` and `tiny` subcommands.
add_library(autotrain_train STATIC
  ${CMAKE_CURRENT_LIST_DIR}/schedule.cpp
  ${CMAKE_CURRENT_LIST_DIR}/loss_scaler.cpp
  ${CMAKE_CURRENT_LIST_DIR}/adamw.cpp
  ${CMAKE_CURRENT_LIST_DIR}/checkpoint_io.cpp
  ${CMAKE_CURRENT_LIST_DIR}/project_files.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tiny_assets.cpp
  ${CMAKE_CURRENT_LIST_DIR}/trainer.cpp)
target_include_directories(autotrain_train PUBLIC ${AUTOTRAIN_INCLUDE})
target_link_libraries(autotrain_train
  PUBLIC autotrain_config autotrain_data
  PRIVATE autotrain_hub autotrain_dist autotrain_device autotrain_model autotrain_lora autotrain_quant_linear autotrain_io autotrain_safetensors_torch autotrain_tokenizer
          nlohmann_json::nlohmann_json)
autotrain_use_torch(autotrain_train)

target_sources(autotrain PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/../cli/cmd_train.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../cli/cmd_tiny.cpp)
target_link_libraries(autotrain PRIVATE autotrain_train)
