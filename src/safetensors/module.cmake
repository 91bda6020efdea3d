# safetensors: reading (mmap, strict header validation, sharded index) and writing (reference
# layout, atomic). The core is free of LibTorch, so the fuzzer and light tools build it in
# seconds; autotrain_safetensors_torch adds zero-copy at::Tensor views and saving tensors.
add_library(autotrain_safetensors STATIC
  ${CMAKE_CURRENT_LIST_DIR}/dtype.cpp
  ${CMAKE_CURRENT_LIST_DIR}/header.cpp
  ${CMAKE_CURRENT_LIST_DIR}/file.cpp
  ${CMAKE_CURRENT_LIST_DIR}/writer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/checkpoint.cpp)
target_include_directories(autotrain_safetensors PUBLIC ${AUTOTRAIN_INCLUDE})
target_link_libraries(autotrain_safetensors PRIVATE fmt::fmt nlohmann_json::nlohmann_json autotrain_io)

add_library(autotrain_safetensors_torch STATIC
  ${CMAKE_CURRENT_LIST_DIR}/torch.cpp)
target_include_directories(autotrain_safetensors_torch PUBLIC ${AUTOTRAIN_INCLUDE})
# LibTorch stays PRIVATE (link-only for dependents): its include folder must not reach files
# that use spdlog, such as the CLI (see src/CMakeLists.txt on {fmt}).
target_link_libraries(autotrain_safetensors_torch PUBLIC autotrain_safetensors)
autotrain_use_torch(autotrain_safetensors_torch)
