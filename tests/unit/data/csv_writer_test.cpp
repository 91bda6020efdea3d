// DATA_FILE's CSV against Python's csv module (what pandas' to_csv uses), byte for byte.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "autotrain/data/csv_writer.h"
#include "support/test_support.h"

namespace autotrain::data {
namespace {

const std::vector<std::string> kTexts = {
    "### Human: Hello\n### Assistant: Hi!",
    "plain",
    "",
    "a, b",
    "she said \"yes\"",
    "\"quoted\"",
    "crlf\r\nline",
    "lone\rcr",
    "  leading and trailing spaces  ",
    "tab\there",
    "unicode ✓ 日本語 — ünïcödé",
    "trailing newline\n",
    "#comment-like",
    "=formula",
};

TEST(CsvWriter, QuoteMinimalRules) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field(""), "\"\"");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("x\"y"), "\"x\"\"y\"");
  EXPECT_EQ(csv_field("l1\nl2"), "\"l1\nl2\"");
}

TEST(CsvWriter, SameBytesAsPythonCsv) {
  auto python = testing::env_var("AUTOTRAIN_PYTHON");
  if (!python) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest (scripts/test.sh)";
  testing::TempDir dir;
  std::string in;
  for (const auto& t : kTexts) in += nlohmann::json(t).dump() + "\n";
  auto in_path = dir.write("texts.jsonl", in);
  auto script = std::filesystem::path(AUTOTRAIN_TEST_SOURCE_DIR) / "reference/data/csv_reference.py";
  auto r = testing::run_command({*python, script.string(), in_path.string(), (dir.path() / "theirs.csv").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  write_single_column_csv(dir.path() / "sub" / "ours.csv", "text", kTexts);
  EXPECT_EQ(testing::read_file(dir.path() / "sub" / "ours.csv"), testing::read_file(dir.path() / "theirs.csv"));
}

}  // namespace
}  // namespace autotrain::data
