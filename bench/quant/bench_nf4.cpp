// Times NF4 quantization and dequantization of one weight on the CPU; prints one JSON line.
//   bench_nf4 [ROWS COLS] [--dtype fp16|bf16|fp32] [--repeat N]
// The weight is random normal * 0.02 (like a trained Linear), seeded, so run_bench.py can make
// the same tensor for bitsandbytes.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "autotrain/quant/nf4.h"

int main(int argc, char** argv) {
  int64_t rows = 4544, cols = 18176;
  int repeat = 3;
  std::string dtype = "fp16";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--dtype") && i + 1 < argc) dtype = argv[++i];
    else if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = std::atoi(argv[++i]);
    else if (i + 1 < argc && argv[i][0] != '-') { rows = std::atoll(argv[i]); cols = std::atoll(argv[++i]); }
  }
  at::ScalarType t = dtype == "bf16" ? at::kBFloat16 : dtype == "fp32" ? at::kFloat : at::kHalf;
  at::manual_seed(0);
  at::Tensor w = (at::randn({rows, cols}) * 0.02).to(t);
  using clock = std::chrono::steady_clock;
  double best_q = 1e30, best_d = 1e30;
  autotrain::quant::Nf4Tensor q;
  at::Tensor out = at::empty({rows, cols}, at::TensorOptions().dtype(t));
  for (int r = 0; r < repeat; ++r) {
    auto t0 = clock::now();
    q = autotrain::quant::quantize_nf4(w);
    auto t1 = clock::now();
    autotrain::quant::dequantize_nf4_into(q, out);
    auto t2 = clock::now();
    best_q = std::min(best_q, std::chrono::duration<double>(t1 - t0).count());
    best_d = std::min(best_d, std::chrono::duration<double>(t2 - t1).count());
  }
  std::printf("{\"impl\": \"autotrain\", \"rows\": %lld, \"cols\": %lld, \"dtype\": \"%s\", \"threads\": %d, "
              "\"quantize_s\": %.6f, \"dequantize_s\": %.6f}\n",
              (long long)rows, (long long)cols, dtype.c_str(), at::get_num_threads(), best_q, best_d);
  return 0;
}
