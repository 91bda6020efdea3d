// Dataset files and DATA_PATH resolution: every format, split naming in folders, the Hugging Face
// cache layout, and errors that say where we looked and what exists.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "autotrain/data/readers.h"
#include "autotrain/data/sha256.h"
#include "autotrain/data/source.h"
#include "data_test_util.h"
#include "support/test_support.h"

#include <nlohmann/json.hpp>

namespace autotrain::data {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using autotrain::testing::TempDir;
using test::write_text;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "(no error)";
}

std::vector<std::string> texts_of(const fs::path& file, const std::string& column = "text") {
  return read_split_texts({"train", {file}}, column).texts;
}

TEST(Readers, EveryFormat) {
  TempDir d;
  EXPECT_THAT(texts_of(d.write("a.jsonl", "{\"text\": \"one\"}\n\n{\"text\": \"two\\nlines\"}\n")),
              ElementsAre("one", "two\nlines"));
  EXPECT_THAT(texts_of(d.write("b.json", R"([{"text": "x"}, {"text": "y"}])")), ElementsAre("x", "y"));
  EXPECT_THAT(texts_of(d.write("c.json", R"({"data": [{"text": "x"}], "version": 2})")), ElementsAre("x"));
  EXPECT_THAT(texts_of(d.write("d.csv", "id,text\n1,\"### Human: a, b\n### Assistant: \"\"c\"\"\"\r\n2,plain\n")),
              ElementsAre("### Human: a, b\n### Assistant: \"c\"", "plain"));
  EXPECT_THAT(texts_of(d.write("e.txt", "first\r\nsecond\n\nlast")), ElementsAre("first", "second", "", "last"));
}

// What the datasets library (and pandas) accept besides the plain layouts: a byte-order mark, JSON
// Lines in a .json file and an array in a .jsonl file, and .txt cut by paragraph or whole.
TEST(Readers, LayoutsTheDatasetsLibraryAlsoReads) {
  TempDir d;
  EXPECT_THAT(texts_of(d.write("bom.csv", "\xEF\xBB\xBFtext,other\r\nhello,1\r\n")), ElementsAre("hello"));
  EXPECT_THAT(texts_of(d.write("bom.jsonl", "\xEF\xBB\xBF{\"text\": \"a\"}\n")), ElementsAre("a"));
  EXPECT_THAT(texts_of(d.write("lines.json", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n")), ElementsAre("a", "b"));
  EXPECT_THAT(texts_of(d.write("one.json", "{\"text\": \"only\"}")), ElementsAre("only"));
  EXPECT_THAT(texts_of(d.write("array.jsonl", "[{\"text\": \"a\"},\n {\"text\": \"b\"}]\n")), ElementsAre("a", "b"));
  // The parser's location and cause, without its internal identifier ("[json.exception...]").
  EXPECT_THAT(error_of([&] { read_rows(d.write("broken.json", "[{\"text\": \"a\"},\n")); }),
              AllOf(HasSubstr("broken.json: not valid JSON: parse error at line 2"), Not(HasSubstr("json.exception"))));
  EXPECT_THAT(texts_of(d.write("bool.jsonl", "{\"text\": true}\n{\"text\": false}\n")), ElementsAre("True", "False"));

  // Expected values from datasets' text builder (sample_by) on the same bytes: paragraphs split at
  // "\n\n" with empty pieces dropped, the last keeping its "\n"; \r\n and \r read as \n.
  auto txt = d.write("doc.txt", "\xEF\xBB\xBFone\r\nstill one\r\n\r\ntwo\n\n\n\n\nthree\rfour\n");
  auto by = [&](const char* mode) { return read_split_texts({"train", {txt}}, "text", mode).texts; };
  EXPECT_THAT(by("line"), ElementsAre("one", "still one", "", "two", "", "", "", "", "three", "four"));
  EXPECT_THAT(by("paragraph"), ElementsAre("one\nstill one", "two", "\nthree\nfour\n"));
  EXPECT_THAT(by("document"), ElementsAre("one\nstill one\n\ntwo\n\n\n\n\nthree\nfour\n"));
}

TEST(Readers, CsvRecordLinesAndErrors) {
  TempDir d;
  auto rows = read_rows(d.write("a.csv", "text\n\"multi\nline\"\nnext\n"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].line, 2u);
  EXPECT_EQ(rows[1].line, 4u);
  // Too many cells is an error, as in pandas (too few are missing values: CsvAsPandasReadsIt).
  EXPECT_THAT(error_of([&] { read_rows(d.write("b.csv", "a,b\n1,2\n3,4,5\n")); }), HasSubstr("b.csv:3: 3 fields, but the header has 2"));
  EXPECT_THAT(error_of([&] { read_rows(d.write("c.csv", "a\n\"open\n")); }), HasSubstr("c.csv:2: unterminated quoted field"));
  EXPECT_THAT(error_of([&] { read_rows(d.write("d.jsonl", "{}\n{oops\n")); }), HasSubstr("d.jsonl:2: not valid JSON"));
  EXPECT_THAT(error_of([&] { read_rows(d.write("e.xlsx", "PK")); }), HasSubstr("unknown format '.xlsx'"));
  // Not UTF-8 (a Latin-1 export): refused at its line and column, as pandas and datasets refuse it.
  EXPECT_THAT(error_of([&] { read_rows(d.write("latin1.csv", "text\ncaf\xE9 au lait\n")); }),
              HasSubstr("latin1.csv:2:4: not valid UTF-8 (byte 0xE9)"));
  EXPECT_THAT(error_of([&] { read_text_lines(d.write("latin1.txt", "ok\n\xFF\n")); }),
              HasSubstr("latin1.txt:2:1: not valid UTF-8 (byte 0xFF)"));
  // A NUL byte ends the input for the JSON parser: refused where it is, never a silent cut.
  EXPECT_THAT(error_of([&] { read_rows(d.write("nul.jsonl", std::string("{\"text\": \"a\"}\n{\"text\": \"b\"}\0\n{}\n", 32))); }),
              HasSubstr("nul.jsonl:2:14: a NUL byte"));
  EXPECT_THAT(error_of([&] { read_rows(d.write("nul.json", std::string("[{\"text\": \"a\"}]\0[1]", 19))); }),
              HasSubstr("nul.json:1:16: a NUL byte"));
  EXPECT_THAT(error_of([&] { read_rows(d.path() / "absent.jsonl"); }),
              HasSubstr("absent.jsonl: cannot read the file: No such file or directory"));
  EXPECT_THAT(error_of([&] { read_rows(d.path() / "missing.jsonl"); }), HasSubstr("missing.jsonl: cannot read"));
}

TEST(Readers, EmptyAndNullCellsAreCountedAndKeptInPlace) {
  TempDir d;
  auto t = read_split_texts({"train", {d.write("a.jsonl", "{\"text\": \"a\"}\n{\"text\": null}\n{\"other\": 1}\n"
                                                          "{\"text\": \"\"}\n{\"text\": 7}\n")}},
                            "text");
  EXPECT_THAT(t.texts, ElementsAre("a", "", "", "", "7"));
  EXPECT_THAT(t.empty, ElementsAre(false, true, true, true, false));
  EXPECT_EQ(t.skipped, 3u);
  EXPECT_THAT(error_of([&] { texts_of(d.write("b.jsonl", "{\"text\": [1]}\n")); }), HasSubstr("b.jsonl:1: column \"text\" holds array"));
}

TEST(Readers, MissingColumnListsTheColumns) {
  TempDir d;
  auto f = d.write("a.csv", "prompt,response\nx,y\n");
  auto msg = error_of([&] { texts_of(f, "text"); });
  EXPECT_THAT(msg, HasSubstr("no column \"text\""));
  EXPECT_THAT(msg, HasSubstr("prompt, response"));
  EXPECT_THAT(msg, HasSubstr("TEXT_COLUMN"));
  EXPECT_THAT(texts_of(f, "response"), ElementsAre("y"));
  // A header without rows names its columns too.
  auto header_only = d.write("h.csv", "prompt,response\n");
  EXPECT_THAT(error_of([&] { texts_of(header_only, "text"); }), HasSubstr("no column \"text\"; the columns are: prompt, response"));
  EXPECT_TRUE(texts_of(header_only, "response").empty());
  EXPECT_THAT(error_of([&] { texts_of(d.write("b.txt", "x\n"), "prompt"); }), HasSubstr("set TEXT_COLUMN=text"));
}

TEST(Source, SingleFileIsTheTrainSplit) {
  TempDir d;
  auto f = d.write("rows.jsonl", "{}\n");
  auto src = resolve_dataset(f.string());
  EXPECT_TRUE(src.single_file);
  EXPECT_THAT(src.split_files("train").files, ElementsAre(f));
  EXPECT_THAT(error_of([&] { resolve_dataset(d.write("rows.xlsx", "").string()); }), HasSubstr("unknown format '.xlsx'"));
}

TEST(Source, FolderSplitsByNameAsDatasetsMatchesThem) {
  TempDir d;
  write_text(d.path() / "oa" / "openassistant_best_replies_train.jsonl", "{}\n");
  write_text(d.path() / "oa" / "openassistant_best_replies_eval.jsonl", "{}\n");
  write_text(d.path() / "oa" / "README.md", "# card\n");
  auto src = resolve_dataset((d.path() / "oa").string());
  EXPECT_EQ(src.kind, "folder");
  EXPECT_THAT(src.split_files("train").files, ElementsAre(d.path() / "oa" / "openassistant_best_replies_train.jsonl"));
  EXPECT_THAT(src.split_files("test").files, ElementsAre(d.path() / "oa" / "openassistant_best_replies_eval.jsonl"));
  auto msg = error_of([&] { src.split_files("validation", "VALID_SPLIT"); });
  EXPECT_THAT(msg, HasSubstr("no file for split 'validation'"));
  EXPECT_THAT(msg, HasSubstr("openassistant_best_replies_train.jsonl"));
  EXPECT_THAT(msg, HasSubstr("or set VALID_SPLIT"));
  // The hint names the key that asked for the split, whatever the split's name.
  EXPECT_THAT(error_of([&] { src.split_files("foo", "TRAIN_SPLIT"); }), HasSubstr("or set TRAIN_SPLIT"));

  // {split}.ext wins (AutoTrain checks {data_path}/{split}.csv first); words, not substrings.
  write_text(d.path() / "f" / "train.csv", "text\nx\n");
  write_text(d.path() / "f" / "data-train-00000.jsonl", "{}\n");
  write_text(d.path() / "f" / "my_validation.json", "[]");
  write_text(d.path() / "f" / "d" / "x-test.jsonl", "{}\n");
  write_text(d.path() / "f" / "contest.jsonl", "{}\n");
  auto f = resolve_dataset((d.path() / "f").string());
  EXPECT_THAT(f.split_files("train").files, ElementsAre(d.path() / "f" / "train.csv"));
  EXPECT_THAT(f.split_files("valid").files, ElementsAre(d.path() / "f" / "my_validation.json"));
  EXPECT_THAT(f.split_files("test").files, ElementsAre(d.path() / "f" / "d" / "x-test.jsonl"));

  // Folder names carry splits too (train/shard.jsonl); the datasets library's metadata files and
  // what autotrain writes into the folder (`exclude`: the project, DATA_FILE) are never data.
  write_text(d.path() / "sub" / "train" / "shard-0.jsonl", "{}\n");
  write_text(d.path() / "sub" / "test" / "shard-0.jsonl", "{}\n");
  write_text(d.path() / "sub" / "dataset_info.json", "{}");
  auto sub = resolve_dataset((d.path() / "sub").string());
  EXPECT_THAT(sub.split_files("train").files, ElementsAre(d.path() / "sub" / "train" / "shard-0.jsonl"));
  EXPECT_THAT(sub.split_files("test").files, ElementsAre(d.path() / "sub" / "test" / "shard-0.jsonl"));
  write_text(d.path() / "here" / "mine.jsonl", "{}\n");
  write_text(d.path() / "here" / "out.csv", "text\nx\n");
  write_text(d.path() / "here" / "proj" / "metrics.jsonl", "{}\n");
  write_text(d.path() / "here" / "proj" / "autotrain-data" / "manifest.json", "{}");
  write_text(d.path() / "here" / "state.json", "{}");
  auto here = resolve_dataset((d.path() / "here").string());
  here.exclude = {d.path() / "here" / "proj", d.path() / "here" / "out.csv"};
  EXPECT_THAT(here.split_files("train").files, ElementsAre(d.path() / "here" / "mine.jsonl"));

  // A folder where no name carries a split is all train (of one format: see
  // FolderOfMixedFormatsAsDatasetsReadsIt).
  write_text(d.path() / "plain" / "b.jsonl", "{}\n");
  write_text(d.path() / "plain" / "a.json", "[]");
  EXPECT_THAT(resolve_dataset((d.path() / "plain").string()).split_files("train").files,
              ElementsAre(d.path() / "plain" / "a.json", d.path() / "plain" / "b.jsonl"));
}

// CSV cells and column names as pandas.read_csv gives them (the tutorial's reader), run at test
// time: its missing-value spellings are null (quoted too, but not with spaces around them), and a
// repeated column name is renamed, the first keeping it.
TEST(Readers, CsvAsPandasReadsIt) {
  auto python = autotrain::testing::env_var("AUTOTRAIN_PYTHON");
  if (!python) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest (scripts/test.sh)";
  TempDir d;
  std::string csv = "text,text,text.1,note,,Unnamed: 4\n";
  int i = 0;
  for (const char* cell : {"NA", "\"NA\"", " NA ", "null", "NULL", "None", "nan", "NaN", "N/A", "n/a", "#N/A", "<NA>",
                           "-nan", "1.#IND", "\"\"", "", "none", "Na", "\"multi\nline\"", "plain text"})
  {
    ++i;
    csv += std::string(cell) + ",second " + std::to_string(i) + (i % 3 ? ",third,x" : ",null,x") + ",u,v\n";
  }
  // Short rows (a spreadsheet drops trailing empty cells): the missing cells are missing values.
  // Lines of spaces and tabs only are blank lines, skipped; spaces before text are kept.
  csv += "short row\n   \n\t \n  two,fields\n";
  const auto file = d.write("t.csv", csv);
  auto script = fs::path(AUTOTRAIN_TEST_SOURCE_DIR) / "reference/data/csv_read_reference.py";
  auto r = autotrain::testing::run_command({*python, script.string(), file.string(), (d.path() / "pandas.json").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto theirs = nlohmann::json::parse(autotrain::testing::read_file(d.path() / "pandas.json"));
  EXPECT_EQ(nlohmann::json(read_csv_columns(file)), theirs["columns"]);
  auto rows = read_rows(file);
  ASSERT_EQ(rows.size(), theirs["rows"].size());
  for (size_t i = 0; i < rows.size(); ++i)
    for (const auto& [column, value] : theirs["rows"][i].items())
      EXPECT_EQ(rows[i].value.value(column, nlohmann::json("(absent)")), value) << "row " << i + 1 << ", " << column;
}

// Python's json module writes NaN / Infinity / -Infinity for non-finite floats, and the datasets
// library reads them (as float NaN: a missing text). Outside strings they read as null; inside a
// string, or spelled otherwise, nothing changes.
TEST(Readers, JsonWithPythonNonFiniteLiterals) {
  TempDir d;
  auto lines = read_rows(d.write("p.jsonl", "{\"text\": \"x\", \"score\": NaN}\n{\"text\": NaN}\n"
                                            "{\"text\": \"NaN, Infinity\", \"v\": [Infinity, -Infinity]}\n"));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].value["text"], "x");
  EXPECT_TRUE(lines[0].value["score"].is_null());
  EXPECT_TRUE(lines[1].value["text"].is_null());
  EXPECT_EQ(lines[2].value["text"], "NaN, Infinity");
  EXPECT_EQ(lines[2].value["v"], nlohmann::json::parse("[null, null]"));
  auto array = read_rows(d.write("a.json", "[{\"text\": \"a\", \"v\": NaN},\n {\"text\": \"b\"}]"));
  ASSERT_EQ(array.size(), 2u);
  EXPECT_EQ(array[1].value["text"], "b");
  // A real mistake next to a NaN: its error, at its column in the file (not the NaN's).
  EXPECT_THAT(error_of([&] { read_rows(d.write("mixed.jsonl", "{\"text\": NaN, \"x\": }\n")); }),
              AllOf(HasSubstr("mixed.jsonl:1"), HasSubstr("at line 1, column 20")));
  // Not Python's spelling: still an error, at the file's own position.
  EXPECT_THAT(error_of([&] { read_rows(d.write("bad.jsonl", "{\"text\": \"x\", \"v\": nan}\n")); }),
              AllOf(HasSubstr("bad.jsonl:1"), HasSubstr("not valid JSON")));
}

// Compressed files (.gz, .zst) as the datasets library reads them: the same texts, run at test
// time (tests/reference/data/compressed_reference.py; gzip files of two members, zstd, bzip2 and
// xz files of two frames or streams).
TEST(Readers, CompressedFilesAsDatasetsReadsThem) {
  auto python = autotrain::testing::env_var("AUTOTRAIN_PYTHON");
  if (!python) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest (scripts/test.sh)";
  TempDir d;
  auto script = fs::path(AUTOTRAIN_TEST_SOURCE_DIR) / "reference/data/compressed_reference.py";
  auto r = autotrain::testing::run_command({*python, script.string(), d.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto cases = nlohmann::json::parse(autotrain::testing::read_file(d.path() / "cases.json"));
  ASSERT_EQ(cases.size(), 22u);
  for (const auto& c : cases) {
    const fs::path file = c["file"].get<std::string>();
    SCOPED_TRACE(file.string());
    const auto texts = read_split_texts({"train", {file}}, "text");
    ASSERT_EQ(texts.texts.size(), c["texts"].size());
    for (size_t i = 0; i < texts.texts.size(); ++i)
      EXPECT_EQ(texts.texts[i], c["texts"][i].is_null() ? "" : c["texts"][i].get<std::string>()) << "row " << i;
  }
  // The split of "train.jsonl.gz" in a folder is train; a damaged file names itself.
  fs::create_directories(d.path() / "ds");
  fs::copy(d.path() / "rows.jsonl.gz", d.path() / "ds" / "train.jsonl.gz");
  fs::copy(d.path() / "rows.csv.zst", d.path() / "ds" / "test.csv.zst");
  fs::copy(d.path() / "rows.jsonl.xz", d.path() / "ds" / "validation.jsonl.xz");
  auto source = resolve_dataset((d.path() / "ds").string());
  EXPECT_THAT(source.split_files("train").files, ElementsAre(d.path() / "ds" / "train.jsonl.gz"));
  EXPECT_THAT(source.split_files("test").files, ElementsAre(d.path() / "ds" / "test.csv.zst"));
  EXPECT_EQ(source.split_of(d.path() / "ds" / "test.csv.zst"), std::optional<std::string>("test"));
  EXPECT_THAT(source.split_files("validation").files, ElementsAre(d.path() / "ds" / "validation.jsonl.xz"));
  for (const char* name : {"rows.jsonl.gz", "rows.csv.zst", "rows.csv.bz2", "rows.jsonl.xz"}) {
    const std::string bytes = autotrain::testing::read_file(d.path() / name);
    const auto cut = d.write(std::string("cut-") + name, bytes.substr(0, bytes.size() - 5));  // inside the last part
    // A name that keeps the format: "cut-rows.jsonl.gz".
    EXPECT_THAT(error_of([&] { read_rows(cut); }), AllOf(HasSubstr(cut.string()), HasSubstr("not a complete")));
  }
  EXPECT_THAT(error_of([&] { read_rows(d.write("plain.jsonl.gz", "{\"text\": \"a\"}\n")); }),
              HasSubstr("not gzip-compressed (no gzip header)"));
  EXPECT_THAT(error_of([&] { read_rows(d.write("empty.jsonl.zst", "")); }), HasSubstr("the file is empty"));
  EXPECT_THAT(error_of([&] { read_rows(d.write("plain.jsonl.xz", "{\"text\": \"a\"}\n")); }),
              HasSubstr("not a complete xz file (no xz header)"));
  EXPECT_THAT(error_of([&] { read_rows(d.write("plain.jsonl.bz2", "{\"text\": \"a\"}\n")); }),
              HasSubstr("not a complete bzip2 file"));
}

// A folder holding files of several formats is read as load_dataset(FOLDER) reads it, at test time
// (tests/reference/data/folder_reference.py): one format per split, the most common, so that a
// stray LICENSE.txt beside the .jsonl files is not trained on.
TEST(Source, FolderOfMixedFormatsAsDatasetsReadsIt) {
  auto python = autotrain::testing::env_var("AUTOTRAIN_PYTHON");
  if (!python) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest (scripts/test.sh)";
  TempDir d;
  auto script = fs::path(AUTOTRAIN_TEST_SOURCE_DIR) / "reference/data/folder_reference.py";
  auto r = autotrain::testing::run_command({*python, script.string(), d.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto cases = nlohmann::json::parse(autotrain::testing::read_file(d.path() / "cases.json"));
  ASSERT_EQ(cases.size(), 5u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c["folder"].get<std::string>());
    auto source = resolve_dataset(c["folder"].get<std::string>());
    for (const auto& [split, texts] : c["splits"].items()) {
      const auto ours = read_split_texts(source.split_files(split), "text").texts;
      EXPECT_EQ(nlohmann::json(ours), texts) << split;
    }
  }
}

// {split}.csv is read (AutoTrain looked for it first); a {split}.jsonl beside it is not, and a
// warning says so.
TEST(Source, ASecondFileForTheSplitIsPointedOut) {
  TempDir d;
  write_text(d.path() / "two" / "train.csv", "text\na\n");
  write_text(d.path() / "two" / "train.jsonl", "{\"text\": \"b\"}\n");
  // spdlog's default logger (the CLI's goes to stderr) writes to stdout here.
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  auto files = resolve_dataset((d.path() / "two").string()).split_files("train").files;
  const std::string err = ::testing::internal::GetCapturedStderr() + ::testing::internal::GetCapturedStdout();
  EXPECT_THAT(files, ElementsAre(d.path() / "two" / "train.csv"));
  EXPECT_THAT(err, HasSubstr("both train.csv and train.jsonl are there; the train split is read from train.csv only"));
}

TEST(Source, HuggingFaceCacheSnapshot) {
  TempDir d;
  fs::path repo = d.path() / "hub" / "datasets--timdettmers--openassistant-guanaco";
  write_text(repo / "refs" / "main", "abc123\n");
  write_text(repo / "snapshots" / "abc123" / "openassistant_best_replies_train.jsonl", "{\"text\": \"hi\"}\n");
  auto env = [&](const char* name) -> std::optional<std::string> {
    if (std::string(name) == "HF_HUB_CACHE") return (d.path() / "hub").string();
    return std::nullopt;
  };
  auto src = resolve_dataset("timdettmers/openassistant-guanaco", env);
  EXPECT_EQ(src.kind, "Hugging Face cache");
  EXPECT_EQ(src.root, repo / "snapshots" / "abc123");
  EXPECT_THAT(src.split_files("train").files,
              ElementsAre(repo / "snapshots" / "abc123" / "openassistant_best_replies_train.jsonl"));

  auto msg = error_of([&] { resolve_dataset("someone/missing", env); });
  EXPECT_THAT(msg, HasSubstr("no dataset found"));
  EXPECT_THAT(msg, HasSubstr("local file or folder"));
  EXPECT_THAT(msg, HasSubstr((d.path() / "hub" / "datasets--someone--missing").string()));
  EXPECT_THAT(msg, HasSubstr("autotrain download --repo-type dataset someone/missing"));
  // A path is not a dataset id (huggingface_hub's rule): no cache lookup, no download hint.
  for (const char* path : {"./nonexist", "~/data.csv", "../up", "a/b/c", "train.jsonl", "-x"}) {
    auto path_msg = error_of([&] { resolve_dataset(path, env); });
    EXPECT_THAT(path_msg, HasSubstr("Check the path")) << path;
    EXPECT_THAT(path_msg, Not(HasSubstr("autotrain download"))) << path;
  }
  fs::remove(repo / "refs" / "main");
  EXPECT_THAT(error_of([&] { resolve_dataset("timdettmers/openassistant-guanaco", env); }), HasSubstr("no refs/main"));
  EXPECT_THAT(error_of([&] { resolve_dataset("", env); }), HasSubstr("DATA_PATH is empty"));
}

TEST(Source, HoldoutIsSeededAndDeterministic) {
  auto a = holdout_indices(1000, 0.1, 42);
  EXPECT_EQ(a.size(), 100u);
  EXPECT_EQ(a, holdout_indices(1000, 0.1, 42));
  EXPECT_NE(a, holdout_indices(1000, 0.1, 43));
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::adjacent_find(a.begin(), a.end()), a.end());
  EXPECT_EQ(holdout_indices(10, 0.01, 1).size(), 1u);  // ceil, at least one
  EXPECT_EQ(holdout_indices(2, 0.9, 1).size(), 1u);    // never all
  EXPECT_TRUE(holdout_indices(1, 0.5, 1).empty());
  EXPECT_TRUE(holdout_indices(100, 0, 1).empty());
}

TEST(Sha256, KnownDigests) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  EXPECT_EQ(sha256_hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  TempDir d;
  EXPECT_EQ(file_sha256(d.write("m", million)), sha256_hex(million));
}

}  // namespace
}  // namespace autotrain::data
