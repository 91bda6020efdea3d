// The safetensors reader and writer on hand-made files: valid layouts, every kind of corruption
// the issue lists (each must be a clear error naming the file and the tensor), and the writer's
// reference layout.
#include <cstring>
#include <fstream>
#include <optional>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "autotrain/safetensors/checkpoint.h"
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
using autotrain::testing::TempDir;
using ::testing::HasSubstr;

// A file image: 8-byte little-endian length (or `declared_len`), header, data.
std::string image(const std::string& header, const std::string& data, std::optional<uint64_t> declared_len = {}) {
  uint64_t n = declared_len.value_or(header.size());
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

Header parse_image(const std::string& bytes) {
  return SafetensorsFile::parse({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, "m.safetensors");
}

// The error message of parsing `bytes`, or "" when it parses.
std::string error_of(const std::string& bytes) {
  try {
    parse_image(bytes);
  } catch (const SafetensorsError& e) {
    return e.what();
  }
  return "";
}

const std::string kTwo =
    R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},)"
    R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

TEST(SafetensorsHeader, ParsesValidHeaderAndSortsByOffset) {
  Header h = parse_image(image(kTwo, std::string(12, 'x')));
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].name, "a");
  EXPECT_EQ(h.tensors[0].dtype, Dtype::F32);
  EXPECT_EQ(h.tensors[1].name, "b");
  EXPECT_EQ(h.tensors[1].begin, 8u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  ASSERT_NE(h.find("b"), nullptr);
  EXPECT_EQ(h.find("c"), nullptr);
}

TEST(SafetensorsHeader, AcceptsPaddingScalarsEmptyTensorsAndUnknownFields) {
  std::string header =
      R"({"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"e":{"dtype":"I8","shape":[0,5],"data_offsets":[8,8]},)"
      R"("x":{"dtype":"BOOL","shape":[3],"data_offsets":[8,11],"extra":[1]}})";
  Header h = parse_image(image(header + "     ", std::string(11, '\0')));
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.find("s")->numel(), 1);
  EXPECT_EQ(h.find("e")->numel(), 0);
  EXPECT_TRUE(h.metadata.empty());
  // No tensors at all is a valid (empty) file.
  EXPECT_TRUE(parse_image(image("{}", "")).tensors.empty());
}

TEST(SafetensorsHeader, SubByteTypesMustFillWholeBytes) {
  EXPECT_EQ(error_of(image(R"({"q":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}})", "xx")), "");
  EXPECT_THAT(error_of(image(R"({"q":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", "xx")),
              HasSubstr("do not fill whole bytes"));
}

TEST(SafetensorsCorrupt, TruncatedFile) {
  std::string e = error_of("\x10\x00\x00");
  EXPECT_THAT(e, HasSubstr("m.safetensors"));
  EXPECT_THAT(e, HasSubstr("truncated"));
  // Data shorter than the offsets promise: a file cut in the middle of a tensor.
  std::string full = image(kTwo, std::string(12, 'x'));
  e = error_of(full.substr(0, full.size() - 3));
  EXPECT_THAT(e, HasSubstr("need 12 bytes of data but the file holds only 9"));
}

TEST(SafetensorsCorrupt, HeaderLengthBeyondFile) {
  std::string e = error_of(image(kTwo, std::string(12, 'x'), 1'000'000));
  EXPECT_THAT(e, HasSubstr("m.safetensors: header length 1000000 runs past the end of the file"));
  e = error_of(image(kTwo, "", kMaxHeaderBytes + 1));
  EXPECT_THAT(e, HasSubstr("exceeds the limit"));
  // A huge length must not wrap around when added to 8.
  e = error_of(image(kTwo, "", ~uint64_t{1}));
  EXPECT_THAT(e, HasSubstr("header length"));
}

TEST(SafetensorsCorrupt, OverlappingOffsets) {
  std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  std::string e = error_of(image(h, std::string(12, 'x')));
  EXPECT_THAT(e, HasSubstr("m.safetensors: tensor 'b' (bytes [4, 12)) overlaps tensor 'a' (bytes [0, 8))"));
}

TEST(SafetensorsCorrupt, Hole) {
  std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  std::string e = error_of(image(h, std::string(12, 'x')));
  EXPECT_THAT(e, HasSubstr("hole of 4 unused bytes before tensor 'b'"));
  // A hole at the start too.
  e = error_of(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, 'x')));
  EXPECT_THAT(e, HasSubstr("hole of 4 unused bytes before tensor 'a'"));
  // Trailing bytes after the last tensor.
  e = error_of(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(6, 'x')));
  EXPECT_THAT(e, HasSubstr("data buffer has 6 bytes but the tensors cover only 4"));
}

TEST(SafetensorsCorrupt, WrongDtypeString) {
  std::string e = error_of(image(R"({"w":{"dtype":"float32","shape":[1],"data_offsets":[0,4]}})", "xxxx"));
  EXPECT_THAT(e, HasSubstr("m.safetensors: tensor 'w': unknown dtype \"float32\""));
  EXPECT_THAT(e, HasSubstr("BF16"));  // lists the valid ones
  e = error_of(image(R"({"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", "xxxx"));
  EXPECT_THAT(e, HasSubstr("tensor 'w': \"dtype\" must be a string"));
}

TEST(SafetensorsCorrupt, ShapeSizeMismatch) {
  std::string e = error_of(image(R"({"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,4]}})", "xxxx"));
  EXPECT_THAT(e, HasSubstr("tensor 'w': dtype BF16 and shape [2,3] need 12 bytes, but data_offsets [0, 4] span 4"));
  e = error_of(image(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "xxxx"));
  EXPECT_THAT(e, HasSubstr("tensor 'w': \"shape\" must be an array of non-negative integers"));
  e = error_of(image(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", ""));
  EXPECT_THAT(e, HasSubstr("overflows"));
  e = error_of(image(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "xxxx"));
  EXPECT_THAT(e, HasSubstr("end before begin"));
  e = error_of(image(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "xxxx"));
  EXPECT_THAT(e, HasSubstr("\"data_offsets\" must be [begin, end]"));
  e = error_of(image(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "xxxx"));
  EXPECT_THAT(e, HasSubstr("tensor 'w': missing field \"shape\""));
}

TEST(SafetensorsCorrupt, NonUtf8Header) {
  std::string h = "{\"w\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
  std::string e = error_of(image(h, "xxxx"));
  EXPECT_THAT(e, HasSubstr("m.safetensors: header is not valid UTF-8 (byte 3"));
  // Overlong encodings and surrogates are invalid UTF-8 too.
  EXPECT_THAT(error_of(image("{\"\xc0\xaf\":1}", "")), HasSubstr("not valid UTF-8"));
  EXPECT_THAT(error_of(image("{\"\xed\xa0\x80\":1}", "")), HasSubstr("not valid UTF-8"));
}

TEST(SafetensorsCorrupt, BadJsonShapes) {
  EXPECT_THAT(error_of(image(R"({"a":)", "")), HasSubstr("header is not valid JSON"));
  EXPECT_THAT(error_of(image("[1,2]", "")), HasSubstr("header must be a JSON object"));
  EXPECT_THAT(error_of(image(R"({"a":[1]})", "")), HasSubstr("tensor 'a': expected an object"));
  EXPECT_THAT(error_of(image(R"({"__metadata__":{"format":1}})", "")),
              HasSubstr("\"__metadata__\" value of 'format' must be a string"));
  EXPECT_THAT(error_of(image(R"({"__metadata__":[]})", "")), HasSubstr("\"__metadata__\" must be an object"));
  std::string dup = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                    R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  EXPECT_THAT(error_of(image(dup, "xxxx")), HasSubstr("header has the key 'a' twice"));
  std::string dup_field = R"({"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  EXPECT_THAT(error_of(image(dup_field, "xxxx")), HasSubstr("'dtype' twice"));
}

TEST(SafetensorsFile, OpenNamesTheFileInErrors) {
  TempDir dir;
  EXPECT_THROW(
      {
        try {
          SafetensorsFile::open(dir.path() / "absent.safetensors");
        } catch (const SafetensorsError& e) {
          EXPECT_THAT(e.what(), HasSubstr("absent.safetensors"));
          throw;
        }
      },
      SafetensorsError);
  write_bytes(dir.path() / "empty.safetensors", "");
  try {
    SafetensorsFile::open(dir.path() / "empty.safetensors");
    ADD_FAILURE() << "an empty file must not open";
  } catch (const SafetensorsError& e) {
    EXPECT_THAT(e.what(), HasSubstr("empty.safetensors: truncated: 0 bytes"));
  }
}

TEST(SafetensorsFile, DataSpansPointIntoTheMapping) {
  TempDir dir;
  std::string data = "AAAABBBBCCCC";
  write_bytes(dir.path() / "m.safetensors", image(kTwo, data));
  auto f = SafetensorsFile::open(dir.path() / "m.safetensors");
  auto a = f.data(f.tensor("a"));
  auto b = f.data(f.tensor("b"));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(a.data()), a.size()), "AAAABBBB");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data()), b.size()), "CCCC");
  EXPECT_THROW(f.tensor("nope"), SafetensorsError);
}

std::span<const std::byte> bytes_of(const std::string& s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }

TEST(SafetensorsWriter, ReferenceLayoutAndPadding) {
  TempDir dir;
  std::string f32(8, '\1'), f16(6, '\2'), i8(1, '\3'), f64(8, '\4');
  std::vector<TensorData> t = {{"b", Dtype::F16, {3}, bytes_of(f16)},
                               {"a", Dtype::F32, {2}, bytes_of(f32)},
                               {"c", Dtype::I8, {1}, bytes_of(i8)},
                               {"z", Dtype::F64, {1}, bytes_of(f64)}};
  write_file(dir.path() / "w.safetensors", t);
  std::string got = read_file(dir.path() / "w.safetensors");
  // Same bytes as safetensors.torch.save for these tensors (F64, F32, F16, I8 order).
  std::string header =
      R"({"__metadata__":{"format":"pt"},"z":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},)"
      R"("c":{"dtype":"I8","shape":[1],"data_offsets":[22,23]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  EXPECT_EQ(got, image(header, f64 + f32 + f16 + i8));
  EXPECT_EQ((got.size() - 23) % 8, 0u);
  // It reads back, and no temporary file is left behind.
  EXPECT_EQ(SafetensorsFile::open(dir.path() / "w.safetensors").header().tensors.size(), 4u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(SafetensorsWriter, RejectsBadInputWithoutTouchingTheTarget) {
  TempDir dir;
  write_bytes(dir.path() / "w.safetensors", "old");
  std::string f32(8, '\1');
  EXPECT_THROW(write_file(dir.path() / "w.safetensors", {{"a", Dtype::F32, {3}, bytes_of(f32)}}), SafetensorsError);
  EXPECT_THROW(write_file(dir.path() / "w.safetensors", {{"a", Dtype::F32, {2}, bytes_of(f32)}, {"a", Dtype::F32, {2}, bytes_of(f32)}}),
               SafetensorsError);
  EXPECT_THROW(write_file(dir.path() / "w.safetensors", {{"__metadata__", Dtype::F32, {2}, bytes_of(f32)}}), SafetensorsError);
  EXPECT_EQ(read_file(dir.path() / "w.safetensors"), "old");
  EXPECT_THROW(write_file(dir.path() / "no-such-dir" / "w.safetensors", {}), SafetensorsError);
}

TEST(SafetensorsCheckpoint, ShardsAndIndex) {
  TempDir dir;
  std::string a(400, 'a'), b(400, 'b'), c(40, 'c');
  auto index = write_sharded(dir.path(),
                             {{"x.a", Dtype::F32, {100}, bytes_of(a)}, {"x.b", Dtype::F32, {100}, bytes_of(b)},
                              {"x.c", Dtype::U8, {40}, bytes_of(c)}},
                             500);
  EXPECT_EQ(index.total_size, 840u);
  EXPECT_EQ(index.total_parameters, 240u);
  EXPECT_EQ(read_file(dir.path() / "model.safetensors.index.json"),
            "{\n  \"metadata\": {\n    \"total_parameters\": 240,\n    \"total_size\": 840\n  },\n  \"weight_map\": {\n"
            "    \"x.a\": \"model-00001-of-00002.safetensors\",\n"
            "    \"x.b\": \"model-00002-of-00002.safetensors\",\n"
            "    \"x.c\": \"model-00002-of-00002.safetensors\"\n  }\n}\n");
  auto files = find_checkpoint(dir.path());
  ASSERT_EQ(files.shards.size(), 2u);
  EXPECT_EQ(files.shard_of.at("x.c"), 1u);
  auto shard = SafetensorsFile::open(files.shards[1]);
  EXPECT_EQ(shard.header().tensors.size(), 2u);
}

TEST(SafetensorsCheckpoint, ClearErrors) {
  TempDir dir;
  try {
    find_checkpoint(dir.path());
    ADD_FAILURE();
  } catch (const SafetensorsError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no model.safetensors or model.safetensors.index.json"));
  }
  write_bytes(dir.path() / "pytorch_model.bin", "pickle");
  try {
    find_checkpoint(dir.path());
    ADD_FAILURE();
  } catch (const SafetensorsError& e) {
    EXPECT_THAT(e.what(), HasSubstr("pickle checkpoint"));
  }
  write_bytes(dir.path() / "model.safetensors.index.json", R"({"weight_map":{"w":"model-00001-of-00002.safetensors"}})");
  try {
    find_checkpoint(dir.path());
    ADD_FAILURE();
  } catch (const SafetensorsError& e) {
    EXPECT_THAT(e.what(), HasSubstr("shard 'model-00001-of-00002.safetensors' (holding 'w') does not exist"));
  }
  write_bytes(dir.path() / "model.safetensors.index.json", R"({"weight_map":{"w":"../../etc/passwd"}})");
  EXPECT_THROW(find_checkpoint(dir.path()), SafetensorsError);
  write_bytes(dir.path() / "model.safetensors.index.json", R"({"weight_map":[]})");
  EXPECT_THROW(find_checkpoint(dir.path()), SafetensorsError);
}

// A Hugging Face cache snapshot links into blobs/: a link to a blob that is gone (an interrupted
// download) is said as such, for the single file, the index and a shard alike.
TEST(SafetensorsCheckpoint, LinksToMissingBlobsAreNamed) {
  TempDir dir;
  const auto blob = dir.path() / "blobs" / "0123abcd";
  auto expect_link_error = [&](const std::string& file) {
    try {
      find_checkpoint(dir.path());
      ADD_FAILURE() << file;
    } catch (const SafetensorsError& e) {
      EXPECT_THAT(e.what(), HasSubstr(file + " is a link to " + blob.string() + ", which does not exist: the download "
                                      "is incomplete"));
    }
  };
  std::filesystem::create_symlink(blob, dir.path() / "model.safetensors");
  expect_link_error("model.safetensors");
  std::filesystem::remove(dir.path() / "model.safetensors");
  std::filesystem::create_symlink(blob, dir.path() / "model.safetensors.index.json");
  expect_link_error("model.safetensors.index.json");
  std::filesystem::remove(dir.path() / "model.safetensors.index.json");
  write_bytes(dir.path() / "model.safetensors.index.json", R"({"weight_map":{"w":"model-00001-of-00002.safetensors"}})");
  std::filesystem::create_symlink(blob, dir.path() / "model-00001-of-00002.safetensors");
  expect_link_error("model-00001-of-00002.safetensors");
}

}  // namespace
}  // namespace autotrain::safetensors
