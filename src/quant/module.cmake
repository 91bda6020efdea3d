# quant: NF4 blockwise quantization (bitsandbytes-compatible). The CPU reference and dispatch
# live in nf4.cpp; the CUDA kernels in cuda/*.cu take raw pointers and a stream, no LibTorch,
# and are built into the CUDA backend plugin (src/device/module.cmake).
add_library(autotrain_quant STATIC ${CMAKE_CURRENT_LIST_DIR}/nf4.cpp)
target_include_directories(autotrain_quant PUBLIC ${AUTOTRAIN_INCLUDE} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(autotrain_quant PRIVATE autotrain_device)
# LibTorch stays PRIVATE (autotrain_use_torch): the CLI links this library without seeing its headers.
autotrain_use_torch(autotrain_quant)

# Linear4bit: the model-facing 4-bit layer (needs the model module and LibTorch's autograd).
if(TARGET autotrain_model)
  add_library(autotrain_quant_linear STATIC
    ${CMAKE_CURRENT_LIST_DIR}/linear4bit.cpp
    ${CMAKE_CURRENT_LIST_DIR}/bnb_checkpoint.cpp)
  target_include_directories(autotrain_quant_linear PUBLIC ${AUTOTRAIN_INCLUDE})
  target_link_libraries(autotrain_quant_linear PUBLIC autotrain_quant autotrain_model
    PRIVATE autotrain_io nlohmann_json::nlohmann_json)
  autotrain_use_torch(autotrain_quant_linear)
  # `autotrain quantize` (the CLI file includes no LibTorch header).
  target_sources(autotrain PRIVATE ${PROJECT_SOURCE_DIR}/src/cli/cmd_quantize.cpp)
  target_link_libraries(autotrain PRIVATE autotrain_quant_linear)
endif()
