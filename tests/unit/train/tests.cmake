# train: optimizer, schedules and loss scaler against torch/transformers; gradient checkpointing.
autotrain_add_gtest(train_optim_test TORCH
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/optim_test.cpp
  LIBS autotrain_train autotrain_safetensors_torch nlohmann_json::nlohmann_json)
autotrain_add_gtest(train_checkpointing_test TORCH
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/checkpointing_test.cpp
  LIBS autotrain_model autotrain_lora)
# On a CUDA machine: the fused AdamW and the loss scaler on the device (exit 77 without one).
autotrain_add_gtest(train_optim_gpu_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/optim_gpu_test.cpp
  LIBS autotrain_train autotrain_safetensors_torch autotrain_device nlohmann_json::nlohmann_json
  LABELS gpu reference
  TORCH)
