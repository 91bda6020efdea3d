# LoRA: PEFT parity (reference, runs transformers + peft at test time) and unit properties.
autotrain_add_gtest(lora_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/lora_test.cpp
  LIBS autotrain_lora autotrain_qlora_loading autotrain_model
  LABELS reference TORCH)
