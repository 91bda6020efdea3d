// Cross-checks with the Python `safetensors` package, run at test time: its files read here and
// are rewritten byte for byte by our writer; our files load there with the right values; the
// corrupt files we reject, it rejects too.
#include <cstring>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/writer.h"
#include "support/test_support.h"
#include "unit/safetensors/python_oracle.h"

namespace autotrain::safetensors {
namespace {

void write_bytes(const std::filesystem::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary) << data;
}

using autotrain::testing::read_file;
using autotrain::testing::run_reference_python;
using autotrain::testing::TempDir;

TEST(SafetensorsPython, PythonFileReadsAndRewritesByteIdentical) {
  TempDir dir;
  auto py_file = dir.path() / "python.safetensors";
  auto r = run_reference_python("safetensors/crosscheck.py", {"write", py_file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

  auto f = SafetensorsFile::open(py_file);
  EXPECT_EQ(f.header().metadata.at("format"), "pt");
  ASSERT_GE(f.header().tensors.size(), 20u);
  std::vector<TensorData> tensors;
  for (const auto& t : f.header().tensors) tensors.push_back({t.name, t.dtype, t.shape, f.data(t)});
  auto ours = dir.path() / "ours.safetensors";
  write_file(ours, tensors);
  EXPECT_EQ(read_file(ours), read_file(py_file)) << "our writer must reproduce the reference layout exactly";
  r = run_reference_python("safetensors/crosscheck.py", {"same", py_file.string(), ours.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

template <typename T>
std::span<const std::byte> raw(const std::vector<T>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size() * sizeof(T)};
}

TEST(SafetensorsPython, OurFileLoadsInPython) {
  // Must agree with pattern_tensors() in tests/reference/safetensors/crosscheck.py.
  std::vector<float> weight(12);
  for (int i = 0; i < 12; ++i) weight[i] = i * 0.25f - 1;
  std::vector<uint16_t> bias = {0x3f80, 0xc020, 0x4050};  // bf16 1.0, -2.5, 3.25
  std::vector<int64_t> ids = {-3, -2, -1, 0, 1, 2};
  std::vector<uint8_t> flags = {1, 0, 1};
  std::vector<double> scalar = {7.0};
  std::vector<uint16_t> empty;
  TempDir dir;
  auto path = dir.path() / "cpp.safetensors";
  write_file(path, {{"weight", Dtype::F32, {3, 4}, raw(weight)},
                    {"bias.bf16", Dtype::BF16, {3}, raw(bias)},
                    {"ids", Dtype::I64, {6}, raw(ids)},
                    {"flags", Dtype::BOOL, {3}, raw(flags)},
                    {"scalar", Dtype::F64, {}, raw(scalar)},
                    {"empty", Dtype::F16, {0, 2}, raw(empty)}});
  auto r = run_reference_python("safetensors/crosscheck.py", {"pattern", path.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(SafetensorsPython, CorruptFilesWeRejectPythonRejects) {
  auto image = [](const std::string& header, const std::string& data, uint64_t n) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out + header + data;
  };
  auto ok = [&](const std::string& h, const std::string& d) { return image(h, d, h.size()); };
  const std::string good = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::vector<std::pair<std::string, std::string>> cases = {
      {"truncated", ok(good, std::string(8, 'x')).substr(0, 40)},
      {"length-beyond-file", image(good, std::string(8, 'x'), 5000)},
      {"overlap", ok(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                     std::string(8, 'x'))},
      {"hole", ok(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, 'x'))},
      {"dtype", ok(R"({"a":{"dtype":"float","shape":[2],"data_offsets":[0,8]}})", std::string(8, 'x'))},
      {"shape", ok(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, 'x'))},
      {"utf8", ok("{\"\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", std::string(8, 'x'))},
      {"trailing", ok(good, std::string(12, 'x'))},
  };
  TempDir dir;
  std::vector<std::string> args = {"reject"};
  for (const auto& [name, bytes] : cases) {
    auto path = dir.path() / (name + ".safetensors");
    write_bytes(path, bytes);
    EXPECT_THROW(SafetensorsFile::open(path), SafetensorsError) << name;
    args.push_back(path.string());
  }
  auto r = run_reference_python("safetensors/crosscheck.py", args);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

}  // namespace
}  // namespace autotrain::safetensors
