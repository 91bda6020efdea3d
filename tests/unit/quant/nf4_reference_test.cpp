// NF4 against the real bitsandbytes: tests/reference/quant/nf4_cases.py quantizes a set of
// tensors with the pinned bitsandbytes (CPU backend) at test time; we quantize the same inputs
// and must produce the same packed bytes, absmax, nested statistics and dequantized values,
// bit for bit.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "autotrain/quant/nf4.h"
#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/torch.h"
#include "support/reference_run.h"
#include "support/test_support.h"

namespace autotrain::quant {
namespace {

namespace st = autotrain::safetensors;

testing::ReferenceRun& oracle() {
  static testing::ReferenceRun run("quant/nf4_cases.py", {});
  return run;
}

class Nf4Reference : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!oracle().have_python()) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest (scripts/test.sh)";
    ASSERT_TRUE(oracle().ok()) << "the bitsandbytes reference script failed:\n" << oracle().log();
  }
  static std::vector<std::string> case_names() {
    std::vector<std::string> names;
    std::istringstream in(testing::read_file(oracle().dir() / "cases.txt"));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) names.push_back(line);
    return names;
  }
};

// Bitwise equality (NaN-safe, and -0.0 != 0.0): compare the raw bytes.
::testing::AssertionResult same_bits(const at::Tensor& ours, const at::Tensor& theirs, const std::string& what) {
  at::Tensor a = ours.contiguous().flatten();
  at::Tensor b = theirs.contiguous().flatten();
  if (a.numel() != b.numel())
    return ::testing::AssertionFailure() << what << ": " << a.numel() << " elements vs " << b.numel();
  if (a.scalar_type() != b.scalar_type())
    return ::testing::AssertionFailure() << what << ": dtype " << a.scalar_type() << " vs " << b.scalar_type();
  auto ab = a.view(at::kByte), bb = b.view(at::kByte);
  if (at::equal(ab, bb)) return ::testing::AssertionSuccess();
  at::Tensor diff = (a.view(at::kByte).reshape({a.numel(), -1}) != b.view(at::kByte).reshape({b.numel(), -1})).any(1);
  int64_t first = diff.nonzero().flatten()[0].item<int64_t>();
  return ::testing::AssertionFailure() << what << ": " << diff.sum().item<int64_t>() << " of " << a.numel()
                                       << " elements differ; first at " << first << ": ours " << a[first].item<double>()
                                       << ", bitsandbytes " << b[first].item<double>();
}

TEST_F(Nf4Reference, BitIdenticalToBitsandbytes) {
  auto names = case_names();
  ASSERT_GE(names.size(), 30u);
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    auto file = st::SafetensorsFile::open(oracle().dir() / (name + ".safetensors"));
    auto get = [&](const char* t) { return st::tensor_view(file, file.tensor(t)); };
    const auto& meta = file.header().metadata;
    const int64_t blocksize = std::stoll(meta.at("blocksize"));
    const bool double_quant = meta.at("double_quant") == "1";

    at::Tensor input = get("input");
    Nf4Tensor q = quantize_nf4(input, blocksize, double_quant);
    EXPECT_TRUE(same_bits(q.packed, get("packed"), "packed"));
    if (double_quant) {
      ASSERT_TRUE(q.nested.has_value());
      EXPECT_TRUE(same_bits(q.nested->code_map, get("nested_code"), "nested code map"));
      EXPECT_TRUE(same_bits(q.nested->codes, get("absmax"), "nested absmax codes"));
      EXPECT_TRUE(same_bits(q.nested->absmax, get("nested_absmax"), "nested absmax"));
      EXPECT_TRUE(same_bits(at::tensor({q.nested->offset}), get("offset"), "offset"));
    } else {
      EXPECT_TRUE(same_bits(q.absmax, get("absmax"), "absmax"));
    }
    EXPECT_TRUE(same_bits(dequantize_nf4(q), get("dequant"), "dequantized"));
    EXPECT_EQ(dequantize_nf4(q).sizes(), input.sizes());
  }
}

}  // namespace
}  // namespace autotrain::quant
