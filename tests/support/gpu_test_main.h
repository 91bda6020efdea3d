// main() for GPU tests (label `gpu`): skipped (exit 77) on a machine without an NVIDIA driver;
// on a machine with one, a CUDA backend that does not load or sees no device is a failure, not
// a skip, so a broken GPU path cannot pass as "skipped". Include once, in the test's main file.
#pragma once

#include <cstdio>

#include <gtest/gtest.h>

#include "autotrain/device/cuda_backend.h"

int main(int argc, char** argv) {
  if (!autotrain::device::nvidia_driver_present()) {
    std::printf("no NVIDIA driver: skipping the GPU tests\n");
    return 77;
  }
  if (!autotrain::device::cuda_available()) {
    std::printf("FAILED: this machine has an NVIDIA driver but CUDA is not usable: backend %s\n",
                autotrain::device::cuda_backend_status().c_str());
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
