# The CUDA backend loader: runs on any machine (the plugin loads without a GPU).
autotrain_add_gtest(device_backend_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cuda_backend_test.cpp
  LIBS autotrain_device
  LABELS unit TORCH)
if(TARGET autotrain_cuda)
  add_dependencies(device_backend_test autotrain_cuda autotrain)
  target_compile_definitions(device_backend_test PRIVATE AUTOTRAIN_TEST_HAVE_CUDA_BACKEND=1)
endif()
