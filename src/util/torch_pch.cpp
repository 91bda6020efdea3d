// The translation unit that builds the precompiled <ATen/ATen.h> every LibTorch target reuses
// (see autotrain_use_torch in src/CMakeLists.txt). It has no code of its own.
