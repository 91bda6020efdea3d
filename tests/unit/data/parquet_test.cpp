// The Parquet reader against pyarrow (tests/reference/data/parquet_reference.py, run at test
// time): each file pyarrow, `datasets` and pandas write, read back by pyarrow and by us, cell for
// cell; the files we refuse name what they hold. Then damaged files, which need no Python.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "autotrain/data/parquet.h"
#include "autotrain/data/prepare.h"
#include "autotrain/data/source.h"
#include "data_test_util.h"
#include "support/reference_run.h"
#include "support/test_support.h"

namespace autotrain::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

testing::ReferenceRun& oracle() {
  static testing::ReferenceRun run("data/parquet_reference.py", {});
  return run;
}

class ParquetVsPyarrow : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!oracle().have_python()) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest (scripts/test.sh)";
    ASSERT_TRUE(oracle().ok()) << "the pyarrow reference script failed:\n" << oracle().log();
  }
  static nlohmann::json cases() { return nlohmann::json::parse(testing::read_file(oracle().dir() / "cases.json")); }
};

TEST_F(ParquetVsPyarrow, EveryCellAsPyarrowReadsIt) {
  size_t readable = 0;
  for (const auto& c : cases()) {
    if (c.contains("error")) continue;
    ++readable;
    SCOPED_TRACE(c["name"].get<std::string>());
    const ColumnText t = read_parquet_text_file(c["file"].get<std::string>(), c["column"].get<std::string>());
    EXPECT_TRUE(t.found);
    EXPECT_EQ(nlohmann::json(t.columns), c["columns"]);
    const auto& want = c["values"];
    ASSERT_EQ(t.values.size(), want.size());
    size_t differing = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const nlohmann::json ours = t.values[i] ? nlohmann::json(*t.values[i]) : nlohmann::json();
      if (ours != want[i] && ++differing <= 3) ADD_FAILURE() << "row " << i << ": " << ours.dump() << " vs " << want[i].dump();
    }
    EXPECT_EQ(differing, 0u);
  }
  EXPECT_GE(readable, 39u) << "the reference script wrote fewer cases than expected";
}

TEST_F(ParquetVsPyarrow, WhatIsNotReadIsRefusedSayingWhat) {
  size_t refused = 0;
  for (const auto& c : cases()) {
    if (!c.contains("error")) continue;
    ++refused;
    SCOPED_TRACE(c["name"].get<std::string>());
    try {
      read_parquet_text_file(c["file"].get<std::string>(), c["column"].get<std::string>());
      ADD_FAILURE() << "read without an error";
    } catch (const DataError& e) {
      EXPECT_THAT(e.what(), HasSubstr(c["error"].get<std::string>()));
      EXPECT_THAT(e.what(), HasSubstr(c["file"].get<std::string>()));
    }
  }
  EXPECT_GE(refused, 3u);
}

// A missing column is the caller's to word: the columns are listed.
TEST_F(ParquetVsPyarrow, AMissingColumnListsTheColumns) {
  for (const auto& c : cases()) {
    if (c["name"] != "other_columns") continue;
    const ColumnText t = read_parquet_text_file(c["file"].get<std::string>(), "body");
    EXPECT_FALSE(t.found);
    EXPECT_EQ(t.columns, (std::vector<std::string>{"id", "tags", "meta", "text", "prompt"}));
  }
}

// The Hub's layout: data/train-00000-of-00001.parquet is the train split (a word of its name).
TEST_F(ParquetVsPyarrow, SplitFilesOfAHubDataset) {
  testing::TempDir d;
  fs::create_directories(d.path() / "data");
  for (const auto& c : cases()) {
    if (c["name"] == "defaults") fs::copy(c["file"].get<std::string>(), d.path() / "data" / "train-00000-of-00001.parquet");
    if (c["name"] == "pandas") fs::copy(c["file"].get<std::string>(), d.path() / "data" / "test-00000-of-00001.parquet");
  }
  auto source = resolve_dataset(d.path().string());
  auto texts = read_split_texts(source.split_files("train"), "text");
  EXPECT_EQ(texts.texts.size(), 3000u);
  EXPECT_GT(texts.skipped, 0u) << "null and empty cells are skipped and counted";
  EXPECT_EQ(read_split_texts(source.split_files("test"), "text").texts.size(), 700u);
  try {
    read_split_texts(source.split_files("train"), "body");
    ADD_FAILURE() << "a missing column passed";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no column \"body\"; the columns are: text"));
  }
}

// `data` on a Hub dataset of Parquet files in the Hugging Face cache: DATA_FILE is what the
// tutorial's dataload.py (datasets' load_dataset + to_csv) wrote from the same files.
TEST_F(ParquetVsPyarrow, DataFileAsDataloadPyWroteIt) {
  testing::TempDir d;
  test::write_byte_model(d.path() / "model", 64);
  const std::string hub = (oracle().dir() / "hub").string();
  ::setenv("HF_HUB_CACHE", hub.c_str(), 1);
  auto prepared = prepare_data(test::make_config({"MODEL_NAME=" + (d.path() / "model").string(), "DATA_PATH=org/pq",
                                                  "AUTOTRAIN_PROJECT_NAME=" + (d.path() / "p").string(),
                                                  "DATA_FILE=" + (d.path() / "train.csv").string(), "VALID_SPLIT=test",
                                                  "BLOCK_SIZE=32"}));
  ::unsetenv("HF_HUB_CACHE");
  EXPECT_EQ(prepared.train_stats.files.size(), 1u);
  ASSERT_TRUE(prepared.valid_stats);
  EXPECT_EQ(prepared.valid_stats->rows, 90);
  EXPECT_EQ(testing::read_file(d.path() / "train.csv"), testing::read_file(oracle().dir() / "dataload_train.csv"));
}

// ---- damaged files (no Python) ----

std::string error_of(std::string_view bytes) {
  try {
    read_parquet_text(bytes, "text", "f.parquet");
  } catch (const DataError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ParquetDamage, BadFilesAreErrorsNotCrashes) {
  EXPECT_THAT(error_of(""), HasSubstr("no PAR1 marks"));
  EXPECT_THAT(error_of("PAR1PAR1"), HasSubstr("no PAR1 marks"));
  EXPECT_THAT(error_of("PAR1\xff\xff\xff\xffPAR1"), HasSubstr("the footer length is past the file's start"));
  EXPECT_THAT(error_of(std::string("PAR1") + std::string("\xff\xff\xff\x7f", 4) + "PAR1"),
              HasSubstr("the footer length is past the file's start"));
  EXPECT_THAT(error_of(std::string("PAR1xxxx") + std::string("\x04\x00\x00\x00", 4) + "PAR1"),
              HasSubstr("f.parquet: not a readable Parquet file"));
  EXPECT_THAT(error_of("PAR1PARE"), HasSubstr("encrypted"));
  EXPECT_THAT(error_of(std::string("PAR1xxxxxxxx") + std::string("\x04\x00\x00\x00", 4) + "PARE"),
              HasSubstr("encrypted"));
}

// The texts' memory is bounded before they are decoded: a small file may hold gigabytes.
TEST(ParquetDamage, TextsPastTheMemoryBudgetAreRefused) {
  const std::string bytes =
      testing::read_file(fs::path(AUTOTRAIN_TEST_SOURCE_DIR) / "fuzz/parquet_seeds/defaults.parquet");
  EXPECT_EQ(read_parquet_text(bytes, "text", "f.parquet", 1 << 20).values.size(), 18u);
  try {
    read_parquet_text(bytes, "text", "f.parquet", 200);
    ADD_FAILURE() << "read past its budget";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("the text column takes more memory than autotrain allows itself for it"));
  }
}

// What a page decodes to counts before it is decoded: 100 KB of DELTA_BYTE_ARRAY that build
// 100 MB of texts, a 20 MB text in a 414-byte Brotli page (the page and the text it holds).
TEST_F(ParquetVsPyarrow, DecodedPagesCountAgainstTheBudget) {
  auto read = [&](const char* name, uint64_t budget) {
    const std::string bytes = testing::read_file(oracle().dir() / name);
    return read_parquet_text(bytes, "text", name, budget);
  };
  auto refused = [&](const char* name, uint64_t budget) {
    try {
      read(name, budget);
    } catch (const DataError& e) {
      return std::string(e.what()).find("more memory than autotrain allows itself") != std::string::npos;
    }
    return false;
  };
  constexpr uint64_t kMB = 1000000;
  const ColumnText repeats = read("delta_repeats.parquet", 400 * kMB);
  ASSERT_EQ(repeats.values.size(), 1000u);
  EXPECT_EQ(repeats.values[999], std::string(100000, 'x'));
  // 100 MB of texts kept and the 100 MB page they are built in: past 150 MB only with both.
  EXPECT_TRUE(refused("delta_repeats.parquet", 150 * kMB)) << "the DELTA_BYTE_ARRAY arena was not counted";
  EXPECT_EQ(read("brotli_20mb.parquet", 100 * kMB).values.at(0)->size(), 20000000u);
  EXPECT_TRUE(refused("brotli_20mb.parquet", 30 * kMB)) << "the decompressed page was not counted";
}

// Every prefix and many one-byte changes of a real file: an error or a result, never a crash
// (the sanitizer build runs this too). Needs the reference files.
TEST_F(ParquetVsPyarrow, TruncatedAndFlippedFilesAreErrors) {
  for (const auto& c : cases()) {
    const auto name = c["name"].get<std::string>();
    if (name != "small_pages" && name != "v2_snappy" && name != "lz4" && name != "v2_brotli" &&
        name != "delta_byte_array_small_pages_v2" && name != "delta_length_large_string_v2" &&
        name != "fixture hadoop_lz4.parquet" && name != "fixture all_null_v2_empty_values.parquet")
      continue;
    const std::string bytes = testing::read_file(c["file"].get<std::string>());
    const size_t stride = std::max<size_t>(1, bytes.size() / 150);
    for (size_t cut = 0; cut < bytes.size(); cut += stride)
      EXPECT_NE(error_of(bytes.substr(0, cut)), "(no error)") << cut;
    size_t errors = 0;
    for (size_t at = 0; at < bytes.size(); at += stride / 2 + 1) {
      std::string flipped = bytes;
      flipped[at] = static_cast<char>(flipped[at] ^ 0x5A);
      errors += error_of(flipped) != "(no error)";
    }
    EXPECT_GT(errors, 0u);
  }
}

}  // namespace
}  // namespace autotrain::data
