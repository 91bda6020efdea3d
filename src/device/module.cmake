# device: the CUDA backend. autotrain_device (linked into the program) loads the plugin
# libautotrain_cuda.so on demand; the plugin holds everything that needs LibTorch's CUDA
# libraries (the NF4 kernels, the caching allocator's statistics, device properties) and is
# written beside the autotrain binary (installed to lib/autotrain/), where the loader looks.
add_library(autotrain_device STATIC ${CMAKE_CURRENT_LIST_DIR}/cuda_backend.cpp ${CMAKE_CURRENT_LIST_DIR}/device_choice.cpp)
target_include_directories(autotrain_device PUBLIC ${AUTOTRAIN_INCLUDE})
target_link_libraries(autotrain_device PRIVATE ${CMAKE_DL_LIBS})
autotrain_use_torch(autotrain_device)

if(AUTOTRAIN_HAVE_CUDA)
  add_library(autotrain_cuda SHARED
    ${CMAKE_CURRENT_LIST_DIR}/cuda_plugin.cpp
    ${PROJECT_SOURCE_DIR}/src/quant/cuda/nf4_kernels.cu)
  target_include_directories(autotrain_cuda PRIVATE ${AUTOTRAIN_INCLUDE})
  # Architectures: CMAKE_CUDA_ARCHITECTURES (third_party/dependencies.cmake: 8.0-9.0 by default).
  set_target_properties(autotrain_cuda PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR} INSTALL_RPATH_USE_LINK_PATH ON
    CXX_VISIBILITY_PRESET hidden CUDA_VISIBILITY_PRESET hidden)
  target_compile_options(autotrain_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
  autotrain_use_torch_cuda(autotrain_cuda)
  install(TARGETS autotrain_cuda LIBRARY DESTINATION lib/autotrain)
  if(TARGET autotrain)
    add_dependencies(autotrain autotrain_cuda)
  endif()
endif()
