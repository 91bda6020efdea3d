# CMake glue for the external dependencies: Debian packages (D2) and LibTorch from the pinned
# PyPI torch wheel in the environment made by scripts/bootstrap.sh (D1). No third-party code
# is copied into this repository.

if(AUTOTRAIN_GPU_CHECK)
  # scripts/gpu-check.sh on a GPU host that has LibTorch, nvcc and CMake but none of our Debian
  # packages: only LibTorch and GoogleTest, the latter built from a carried source folder.
  if(AUTOTRAIN_GTEST_SOURCE_DIR)
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    add_subdirectory(${AUTOTRAIN_GTEST_SOURCE_DIR} ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)
    foreach(lib gtest gtest_main gmock)
      if(NOT TARGET GTest::${lib})
        add_library(GTest::${lib} ALIAS ${lib})
      endif()
    endforeach()
  else()
    find_package(GTest CONFIG REQUIRED)
  endif()
else()
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
find_package(Threads REQUIRED)
if(AUTOTRAIN_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
endif()
if(AUTOTRAIN_BUILD_BENCH)
  find_package(benchmark CONFIG QUIET)
endif()
endif()

# --- Python environment and LibTorch -------------------------------------------------------
if(NOT AUTOTRAIN_PYTHON)
  # scripts/test.sh passes the bootstrap venv; a plain `cmake` falls back to the one bootstrap
  # would make, then to python3 on PATH.
  execute_process(COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/../scripts/bootstrap.sh --no-apt --quiet --print-only
                  OUTPUT_VARIABLE _venv OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(_rc EQUAL 0 AND EXISTS "${_venv}/bin/python")
    set(AUTOTRAIN_PYTHON "${_venv}/bin/python" CACHE FILEPATH "" FORCE)
  else()
    find_program(_py python3 REQUIRED)
    set(AUTOTRAIN_PYTHON "${_py}" CACHE FILEPATH "" FORCE)
  endif()
endif()
execute_process(COMMAND ${AUTOTRAIN_PYTHON} -c "import torch; print(torch.utils.cmake_prefix_path)"
                OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "LibTorch not found: '${AUTOTRAIN_PYTHON}' cannot import torch.\n"
                      "Run scripts/bootstrap.sh, or pass -DAUTOTRAIN_PYTHON=<python with torch>.")
endif()
list(APPEND CMAKE_PREFIX_PATH "${_torch_prefix}")

# Torch's CMake package configures CUDA itself when a toolkit is present; without an arch list
# it would try to run a program on the (absent) GPU to pick one. Its flags replace
# CMAKE_CUDA_ARCHITECTURES below. Machine code for A100 to H100/H200, and PTX of the newest so a
# later GPU (Blackwell) compiles the kernels at load instead of failing with "no kernel image".
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(ENV{TORCH_CUDA_ARCH_LIST} "8.0;8.6;8.9;9.0+PTX")
endif()
if(AUTOTRAIN_WITH_CUDA)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80 86 89 90)
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no CUDA20 dialect for nvcc
    set(AUTOTRAIN_HAVE_CUDA ON)
  else()
    message(STATUS "autotrain: no CUDA toolkit found, building the CPU path only")
    set(AUTOTRAIN_HAVE_CUDA OFF)
  endif()
endif()
find_package(Torch CONFIG REQUIRED)
message(STATUS "autotrain: LibTorch ${Torch_VERSION} from ${_torch_prefix}; CUDA path: ${AUTOTRAIN_HAVE_CUDA}")
