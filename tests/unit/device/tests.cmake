# The CUDA backend loader: runs on any machine (the plugin loads without a GPU).
autotrain_add_gtest(device_backend_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cuda_backend_test.cpp
  LIBS autotrain_device
  LABELS unit TORCH)
if(TARGET autotrain_cuda)
  # A stand-in for the NVIDIA driver's libcuda.so.1 (no functions): with it on LD_LIBRARY_PATH
  # the program believes a driver exists and loads the backend, and CUDA then finds no device.
  add_library(fake_nvidia_driver SHARED ${CMAKE_CURRENT_LIST_DIR}/fake_libcuda.cpp)
  set_target_properties(fake_nvidia_driver PROPERTIES OUTPUT_NAME cuda PREFIX lib SUFFIX .so.1
                        LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests/fake-nvidia-driver)
  add_dependencies(device_backend_test autotrain_cuda autotrain fake_nvidia_driver)
  target_compile_definitions(device_backend_test PRIVATE AUTOTRAIN_TEST_HAVE_CUDA_BACKEND=1
    AUTOTRAIN_TEST_FAKE_DRIVER_DIR="${PROJECT_BINARY_DIR}/tests/fake-nvidia-driver")
endif()
