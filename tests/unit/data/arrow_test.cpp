// The Arrow IPC reader against pyarrow (tests/reference/data/arrow_reference.py, run at test
// time): streams and IPC files, zstd- and LZ4-compressed batches, dictionary-encoded text (delta
// and replacement dictionaries, every index type), fields of every layout before the text,
// and datasets' save_to_disk folders read as load_from_disk reads them. Then damaged files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "autotrain/data/arrow_ipc.h"
#include "autotrain/data/source.h"
#include "support/reference_run.h"
#include "support/test_support.h"

namespace autotrain::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

testing::ReferenceRun& oracle() {
  static testing::ReferenceRun run("data/arrow_reference.py", {});
  return run;
}

class ArrowVsPyarrow : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!oracle().have_python()) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest (scripts/test.sh)";
    ASSERT_TRUE(oracle().ok()) << "the pyarrow reference script failed:\n" << oracle().log();
  }
  static nlohmann::json cases() { return nlohmann::json::parse(testing::read_file(oracle().dir() / "cases.json")); }
};

nlohmann::json as_json(const ColumnText& t) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& v : t.values) a.push_back(v ? nlohmann::json(*v) : nlohmann::json());
  return a;
}

TEST_F(ArrowVsPyarrow, EveryCellAsPyarrowReadsIt) {
  size_t readable = 0, refused = 0;
  for (const auto& c : cases()) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const std::string file = c["file"].get<std::string>(), column = c["column"].get<std::string>();
    if (c.contains("error")) {
      ++refused;
      try {
        read_arrow_text_file(file, column);
        ADD_FAILURE() << "read without an error";
      } catch (const DataError& e) {
        EXPECT_THAT(e.what(), HasSubstr(c["error"].get<std::string>()));
        EXPECT_THAT(e.what(), HasSubstr(file));
      }
      continue;
    }
    ++readable;
    const ColumnText t = read_arrow_text_file(file, column);
    EXPECT_TRUE(t.found);
    EXPECT_EQ(nlohmann::json(t.columns), c["columns"]);
    EXPECT_EQ(as_json(t), c["values"]);
  }
  EXPECT_GE(readable, 41u);
  EXPECT_GE(refused, 2u);
}

// A DatasetDict that save_to_disk wrote is a DATA_PATH folder: train/ and test/ are the splits,
// their metadata files are not data, and the train texts are load_from_disk's.
TEST_F(ArrowVsPyarrow, SaveToDiskFolderAsLoadFromDiskReadsIt) {
  auto source = resolve_dataset((oracle().dir() / "saved").string());
  const auto train = source.split_files("train");
  ASSERT_EQ(train.files.size(), 1u);
  EXPECT_EQ(train.files[0].extension(), ".arrow");
  const auto texts = read_split_texts(train, "text");
  const auto want = nlohmann::json::parse(testing::read_file(oracle().dir() / "saved_train.json"));
  ASSERT_EQ(texts.texts.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_EQ(texts.texts[i], want[i].is_null() ? "" : want[i].get<std::string>()) << "row " << i;
  EXPECT_EQ(read_split_texts(source.split_files("test"), "text").texts.size(), 50u);
  try {
    read_split_texts(train, "body");
    ADD_FAILURE() << "a missing column passed";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no column \"body\"; the columns are: text, n"));
  }
}

// A replaced dictionary gives its memory back; deltas add up. Twenty dictionaries holding a 1 MB
// text each, the rows all "s": replaced, they fit in 8 MB; as deltas, they do not.
TEST_F(ArrowVsPyarrow, ReplacedDictionariesGiveTheirMemoryBack) {
  const std::string replaced = testing::read_file(oracle().dir() / "dictionary_big_replaced.arrow");
  const ColumnText t = read_arrow_text(replaced, "text", "replaced", 8000000);
  EXPECT_EQ(t.values.size(), 40u);
  const std::string deltas = testing::read_file(oracle().dir() / "dictionary_big_deltas.arrow");
  try {
    read_arrow_text(deltas, "text", "deltas", 8000000);
    ADD_FAILURE() << "twenty 1 MB dictionary values read in 8 MB";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("more memory than autotrain allows itself"));
  }
  EXPECT_EQ(read_arrow_text(deltas, "text", "deltas", 100000000).values.size(), 40u);
}

std::string error_of(std::string_view bytes) {
  try {
    read_arrow_text(bytes, "text", "f.arrow", 1 << 28);
  } catch (const DataError& e) {
    return e.what();
  }
  return "(no error)";
}

// Every prefix and many one-byte changes of real files: an error or a result, never a crash (the
// sanitizer build runs this too).
TEST_F(ArrowVsPyarrow, TruncatedAndFlippedFilesAreErrorsNotCrashes) {
  for (const auto& c : cases()) {
    const auto name = c["name"].get<std::string>();
    if (name != "other_columns" && name != "stream_zstd" && name != "file_format" && name != "feather_default" &&
        name != "dictionary_replaced_lz4" && name != "dictionary_deltas")
      continue;
    const std::string bytes = testing::read_file(c["file"].get<std::string>());
    const size_t stride = std::max<size_t>(1, bytes.size() / 150);
    size_t errors = 0;
    for (size_t cut = 0; cut < bytes.size(); cut += stride) errors += error_of(bytes.substr(0, cut)) != "(no error)";
    EXPECT_GT(errors, 0u);
    for (size_t at = 0; at < bytes.size(); at += stride / 2 + 1) {
      std::string flipped = bytes;
      flipped[at] = static_cast<char>(flipped[at] ^ 0x5A);
      (void)error_of(flipped);
    }
  }
}

// Crafted files (tests/fuzz/arrow_seeds): a schema whose children lists name the same field
// again and again (2^60 visits), and a zstd buffer declaring 1 GiB that its frame does not back.
// Both are refused at once, allocating nothing much.
TEST(ArrowDamage, CraftedBombsAreRefusedAtOnce) {
  const fs::path seeds = fs::path(AUTOTRAIN_TEST_SOURCE_DIR) / "fuzz/arrow_seeds";
  EXPECT_THAT(error_of(testing::read_file(seeds / "schema_bomb.arrow")), HasSubstr("more fields than its header can hold"));
  EXPECT_THAT(error_of(testing::read_file(seeds / "zstd_length_bomb.arrow")),
              HasSubstr("more memory than autotrain allows itself"));
}

TEST(ArrowDamage, BadFilesAreErrors) {
  EXPECT_THAT(error_of(""), HasSubstr("no schema message"));
  EXPECT_THAT(error_of(std::string("\xff\xff\xff\xff\x00\x00\x00\x00", 8)), HasSubstr("no schema message"));
  EXPECT_THAT(error_of(std::string("\xff\xff\xff\xff\x40\x00\x00\x00", 8)), HasSubstr("f.arrow: not a readable Arrow IPC file"));
  EXPECT_THAT(error_of(std::string("ARROW1\0\0", 8)), HasSubstr("an Arrow file without its footer"));
  EXPECT_THAT(error_of("ARROW1"), HasSubstr("an Arrow file without its footer"));  // shorter than the magic's padding
  EXPECT_THAT(error_of("ARROW1\x01"), HasSubstr("an Arrow file without its footer"));
  EXPECT_THAT(error_of(std::string("ARROW1\0\0", 8) + std::string("\xff\xff\xff\x7f", 4) + "ARROW1"),
              HasSubstr("a footer length past the file's start"));
  EXPECT_THAT(error_of("FEA1xxxxxxxx"), HasSubstr("Feather v1"));
}

}  // namespace
}  // namespace autotrain::data
