# model: model folders (local or Hugging Face cache), Falcon's config.json, and
# FalconForCausalLM on ATen with its loss, loader and the `eval` subcommand.

# The parts without LibTorch: config.json and folder resolution (fast to build and test).
add_library(autotrain_model_config STATIC
  ${CMAKE_CURRENT_LIST_DIR}/falcon_config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/model_dir.cpp
  ${CMAKE_CURRENT_LIST_DIR}/model_folder.cpp)
target_include_directories(autotrain_model_config PUBLIC ${AUTOTRAIN_INCLUDE})
target_link_libraries(autotrain_model_config PUBLIC nlohmann_json::nlohmann_json PRIVATE fmt::fmt autotrain_io)

add_library(autotrain_model STATIC
  ${CMAKE_CURRENT_LIST_DIR}/ops.cpp
  ${CMAKE_CURRENT_LIST_DIR}/checkpoint.cpp
  ${CMAKE_CURRENT_LIST_DIR}/falcon.cpp
  ${CMAKE_CURRENT_LIST_DIR}/loss.cpp
  ${CMAKE_CURRENT_LIST_DIR}/loader.cpp)
target_include_directories(autotrain_model PUBLIC ${AUTOTRAIN_INCLUDE})
# LibTorch PRIVATE (see safetensors/module.cmake): the CLI links this library without seeing it.
target_link_libraries(autotrain_model PUBLIC autotrain_model_config autotrain_safetensors_torch
  PRIVATE autotrain_io autotrain_device)
autotrain_use_torch(autotrain_model)

# `eval` reads text rows with the tokenizer when that module is part of the build (it is
# included before this one); pre-tokenized rows always work.
target_sources(autotrain_model PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/eval_data.cpp
  ${CMAKE_CURRENT_LIST_DIR}/eval.cpp)
# `generate` and `chat` (the tokenizer encodes prompts and decodes replies).
target_sources(autotrain_model PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/generate.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sampling.cpp
  ${CMAKE_CURRENT_LIST_DIR}/beam_search.cpp)
# The row readers (jsonl/json/csv) are the data module's (src/data/readers.cpp, no LibTorch).
target_link_libraries(autotrain_model PRIVATE autotrain_data)
if(TARGET autotrain_tokenizer)
  target_link_libraries(autotrain_model PRIVATE autotrain_tokenizer)
  target_compile_definitions(autotrain_model PRIVATE AUTOTRAIN_HAVE_TOKENIZER=1)
endif()

# The `eval` subcommand: cmd_eval.cpp sees only the LibTorch-free autotrain/model/eval.h.
target_sources(autotrain PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../cli/cmd_eval.cpp)
target_link_libraries(autotrain PRIVATE autotrain_model)
