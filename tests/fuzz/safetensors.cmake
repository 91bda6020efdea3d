# safetensors header fuzzer: the LibTorch-free parser/validator on arbitrary file images
# (instrumentation comes from the top-level AUTOTRAIN_BUILD_FUZZERS flags).
autotrain_add_fuzzer(fuzz_safetensors
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_safetensors.cpp
  LIBS autotrain_safetensors
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/safetensors_seeds)
