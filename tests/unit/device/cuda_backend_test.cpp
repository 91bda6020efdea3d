// The CUDA backend plugin is loaded only on demand, loads on any machine (without a GPU too),
// registers LibTorch's CUDA libraries when it loads, and explains why when it cannot.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include "autotrain/device/cuda_backend.h"
#include "support/test_support.h"

namespace autotrain::device {
namespace {

bool mapped(const std::string& library) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(library) != std::string::npos) return true;
  return false;
}

std::string command_output(const std::string& command) {
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  return out;
}

// Runs `body` in a forked child (the loader's state is per process and loads only once).
int in_child(void (*body)()) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    try {
      body();
    } catch (...) {
      _exit(100);
    }
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

TEST(CudaBackend, MissingPluginIsExplained) {
  if (!cuda_backend_status().empty()) GTEST_SKIP() << "the loader already ran in this process (shuffled test order)";
  int rc = in_child([] {
    setenv("AUTOTRAIN_CUDA_BACKEND", "/nonexistent/libautotrain_cuda.so", 1);
    if (cuda_backend(/*even_without_driver=*/true) != nullptr) _exit(1);
    if (cuda_backend_status().find("/nonexistent/libautotrain_cuda.so") == std::string::npos) _exit(2);
    if (cuda_available()) _exit(3);
    // The path came from the variable: the status says so, not "beside the binary".
    if (cuda_backend_status().find("AUTOTRAIN_CUDA_BACKEND names") == std::string::npos) _exit(4);
  });
  EXPECT_EQ(rc, 0) << "1: loaded a missing file; 2: the reason does not name the path; 3: CUDA reported available; "
                      "4: the variable is not named as the cause";
}

#ifdef AUTOTRAIN_TEST_HAVE_CUDA_BACKEND
TEST(CudaBackend, LateLoadAfterLibTorchsFirstCudaQueryIsRefused) {
  if (!cuda_backend_status().empty()) GTEST_SKIP() << "the loader already ran in this process (shuffled test order)";
  int rc = in_child([] {
    if (at::hasCUDA()) _exit(1);  // LibTorch now holds its "no CUDA" hooks for good
    if (cuda_backend(/*even_without_driver=*/true) != nullptr) _exit(2);
    if (cuda_backend_status().find("answered a CUDA query before") == std::string::npos) _exit(3);
  });
  EXPECT_EQ(rc, 0) << "1: CUDA without the backend; 2: a useless late load reported as success; 3: no explanation";
}

TEST(CudaBackend, ProgramDoesNotLinkCudaLibraries) {
  const char* bin = std::getenv("AUTOTRAIN_BIN");
  ASSERT_TRUE(bin && *bin) << "AUTOTRAIN_BIN is not set (run through CTest)";
  std::string needed = command_output(std::string("readelf -d '") + bin + "'");
  ASSERT_NE(needed.find("libtorch_cpu.so"), std::string::npos) << "readelf gave no dynamic section:\n" << needed;
  for (const char* lib : {"libtorch_cuda", "libc10_cuda", "libcudart", "libcublas", "libcudnn", "libnccl"})
    EXPECT_EQ(needed.find(lib), std::string::npos) << "the autotrain binary links " << lib;
}

// The commands that may use a GPU must load the backend before anything asks LibTorch about
// CUDA (else CUDA stays off for the process: see LateLoad... above). With a stand-in driver the
// backend loads and finds no device, and the error must say it was loaded, not that it came late.
TEST(CudaBackend, CommandsLoadTheBackendBeforeLibTorchsFirstCudaQuery) {
  if (nvidia_driver_present()) GTEST_SKIP() << "a real NVIDIA driver is present: the stand-in would not be used";
  const char* bin = std::getenv("AUTOTRAIN_BIN");
  ASSERT_TRUE(bin && *bin) << "AUTOTRAIN_BIN is not set (run through CTest)";
  testing::TempDir dir;
  const std::string config = std::string(AUTOTRAIN_TEST_SOURCE_DIR) + "/../configs/tiny.env";
  const std::string model = (dir.path() / "model").string(), data = (dir.path() / "data").string();
  auto made = testing::run_command({bin, "tiny", "-c", config, "--set", "MODEL_NAME=" + model, "--set", "DATA_PATH=" + data},
                                   {"PATH=/usr/bin:/bin"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  std::string library_path = AUTOTRAIN_TEST_FAKE_DRIVER_DIR;
  if (auto inherited = testing::env_var("LD_LIBRARY_PATH")) library_path += ":" + *inherited;
  const std::vector<std::string> env = {"PATH=/usr/bin:/bin", "LD_LIBRARY_PATH=" + library_path};

  auto eval = testing::run_command({bin, "eval", "--model", model, "--data", data + "/test.jsonl", "--block-size", "64",
                                    "--device", "cuda"}, env);
  EXPECT_EQ(eval.exit_code, 1) << "no usable GPU is the machine's problem, as for train: " << eval.err;
  EXPECT_NE(eval.err.find("--device cuda but no CUDA device is available"), std::string::npos) << eval.err;
  EXPECT_NE(eval.err.find("loaded from"), std::string::npos) << eval.err;
  EXPECT_EQ(eval.err.find("before it was loaded"), std::string::npos) << eval.err;
  auto eval_index = testing::run_command({bin, "eval", "--model", model, "--data", data + "/test.jsonl",
                                          "--block-size", "64", "--device", "cuda:0"}, env);
  EXPECT_EQ(eval_index.exit_code, 1) << "cuda:N is accepted as DEVICE accepts it: " << eval_index.err;
  EXPECT_NE(eval_index.err.find("--device cuda:0 but no CUDA device is available"), std::string::npos) << eval_index.err;

  auto train = testing::run_command({bin, "train", "-c", config, "--set", "MODEL_NAME=" + model, "--set",
                                     "DATA_PATH=" + data, "--set", "DATA_FILE=" + (dir.path() / "train.csv").string(),
                                     "--set", "AUTOTRAIN_PROJECT_NAME=" + (dir.path() / "project").string(), "--set",
                                     "DEVICE=cuda", "--resume", "never"}, env);
  EXPECT_EQ(train.exit_code, 1) << train.err;
  EXPECT_NE(train.err.find("loaded from"), std::string::npos) << train.err;
  EXPECT_EQ(train.err.find("before it was loaded"), std::string::npos) << train.err;

  // --device auto on that machine falls back to the CPU, and says so.
  auto eval_auto = testing::run_command({bin, "eval", "--model", model, "--data", data + "/test.jsonl", "--block-size",
                                         "64", "--device", "auto", "--json"}, env);
  EXPECT_EQ(eval_auto.exit_code, 0) << eval_auto.err;
  EXPECT_NE(eval_auto.err.find("warning: --device auto: this machine has an NVIDIA driver but CUDA is not usable"),
            std::string::npos)
      << "falling back to the CPU beside a driver must be said: " << eval_auto.err;
}

TEST(CudaBackend, LoadsOnDemandAndRegistersLibTorchCuda) {
  if (!cuda_backend_status().empty()) GTEST_SKIP() << "the loader already ran in this process (--gtest_repeat)";
  // Nothing in this process has asked for CUDA yet: LibTorch's CUDA libraries are not mapped.
  EXPECT_FALSE(mapped("libtorch_cuda.so"));
  EXPECT_FALSE(mapped("libautotrain_cuda.so"));
  EXPECT_TRUE(cuda_backend_status().empty());

  if (!nvidia_driver_present()) {
    // A machine without a driver declines to load it for ordinary use...
    EXPECT_EQ(cuda_backend(), nullptr);
    EXPECT_NE(cuda_backend_status().find("no NVIDIA driver"), std::string::npos) << cuda_backend_status();
    EXPECT_FALSE(cuda_available());
    EXPECT_FALSE(mapped("libtorch_cuda.so"));
  }
  // ...and loads it when asked to (what `autotrain setup` does to report the LibTorch build).
  const CudaBackendApi* api = cuda_backend(/*even_without_driver=*/true);
  ASSERT_NE(api, nullptr) << cuda_backend_status();
  EXPECT_NE(cuda_backend_status().find("loaded from"), std::string::npos) << cuda_backend_status();
  EXPECT_EQ(api->abi_version, kCudaBackendAbiVersion);
  for (const void* f : {(const void*)api->dequantize_nf4, (const void*)api->quantize_nf4,
                        (const void*)api->decode_nested_absmax, (const void*)api->error_string,
                        (const void*)api->peak_reserved_bytes, (const void*)api->device_info,
                        (const void*)api->synchronize})
    EXPECT_NE(f, nullptr);
  EXPECT_STREQ(api->error_string(0), "no error");
  EXPECT_TRUE(mapped("libtorch_cuda.so"));
  // LibTorch's CUDA hooks are registered now (before the load they throw: no CUDA library).
  EXPECT_TRUE(at::detail::getCUDAHooks().hasCUDART());
  EXPECT_EQ(cuda_backend(), api) << "a second call returns the loaded backend";
  if (!nvidia_driver_present()) {
    EXPECT_FALSE(cuda_available()) << "no driver, no device";
  }
}
#endif

}  // namespace
}  // namespace autotrain::device
