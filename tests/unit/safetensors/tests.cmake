# safetensors: hand-made valid and corrupt files (unit, no LibTorch), and cross-checks with the
# Python safetensors package run at test time (reference).
autotrain_add_gtest(test_safetensors
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/safetensors_test.cpp
  LIBS autotrain_safetensors
  LABELS unit)
autotrain_add_gtest(test_safetensors_python
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/crosscheck_test.cpp
  LIBS autotrain_safetensors
  LABELS reference)
