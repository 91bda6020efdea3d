# NF4 against the real bitsandbytes (reference), and CUDA against the CPU reference (gpu).
autotrain_add_gtest(nf4_reference_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/nf4_reference_test.cpp
  LIBS autotrain_quant autotrain_safetensors_torch
  LABELS reference TORCH)
autotrain_add_gtest(nf4_unit_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/nf4_unit_test.cpp
  LIBS autotrain_quant
  LABELS unit TORCH)
if(AUTOTRAIN_HAVE_CUDA)
  autotrain_add_gtest(nf4_gpu_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/nf4_gpu_test.cpp
    LIBS autotrain_quant autotrain_device
    LABELS gpu TORCH)
endif()

if(TARGET autotrain_quant_linear)
  autotrain_add_gtest(linear4bit_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/linear4bit_test.cpp
    LIBS autotrain_quant_linear autotrain_lora autotrain_model
    LABELS unit TORCH)
endif()

if(TARGET autotrain_quant_linear)
  autotrain_add_gtest(bnb_checkpoint_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/bnb_checkpoint_test.cpp
    LIBS autotrain_quant_linear autotrain_model
    LABELS reference TORCH)
  add_dependencies(bnb_checkpoint_test autotrain)
endif()
if(TARGET nf4_unit_test)  # not built by scripts/gpu-check.sh's quant mode
  # nf4_unit_test also simulates the CUDA dequantize kernel's layout header on the CPU.
  target_include_directories(nf4_unit_test PRIVATE ${PROJECT_SOURCE_DIR}/src/quant/cuda)
endif()
