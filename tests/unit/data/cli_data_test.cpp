// `autotrain data -c FILE`: the summary, where the cache and DATA_FILE are, reuse on a second
// run, and exit 2 with a clear message for bad input.
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "autotrain/io/project_lock.h"
#include "data_test_util.h"
#include "support/test_support.h"

namespace autotrain::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using autotrain::testing::TempDir;

class DataCli : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bin = testing::env_var("AUTOTRAIN_BIN");
    if (!bin) GTEST_SKIP() << "AUTOTRAIN_BIN is not set: run through ctest";
    bin_ = *bin;
    test::write_byte_model(dir_.path() / "model", 64);
    dir_.write("rows.jsonl", "{\"text\": \"### Human: hi ### Assistant: hello\"}\n{\"text\": null}\n");
    config_ = dir_.write("run.env",
                         "MODEL_NAME=model\nDATA_PATH=rows.jsonl\nAUTOTRAIN_PROJECT_NAME=out/proj\n"
                         "DATA_FILE=./train.csv\nBLOCK_SIZE=8\nTEXT_COLUMM=\"\"\n");
  }
  testing::CommandResult run(std::vector<std::string> args) const {
    args.insert(args.begin(), bin_);
    return testing::run_command(args, {"PATH=/usr/bin:/bin", "HOME=" + dir_.path().string()}, dir_.path());
  }

  TempDir dir_;
  std::string bin_;
  fs::path config_;
};

TEST_F(DataCli, WritesSummaryCacheAndDataFile) {
  auto r = run({"data", "-c", config_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("train: 2 rows (1 skipped: empty text), 34 tokens -> 4 blocks of 8 (2 tokens dropped)"));
  EXPECT_THAT(r.out, HasSubstr("token cache: out/proj/autotrain-data (built: no token cache yet)"));
  EXPECT_THAT(r.out, HasSubstr("DATA_FILE: ./train.csv"));
  EXPECT_THAT(r.err, HasSubstr("info: building the token cache"));
  EXPECT_TRUE(fs::exists(dir_.path() / "out/proj/autotrain-data/train.safetensors"));
  EXPECT_EQ(testing::read_file(dir_.path() / "train.csv"), "text\n### Human: hi ### Assistant: hello\n\"\"\n");

  auto again = run({"data", "-c", config_.string()});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("(reused: the manifest matches)"));

  auto changed = run({"data", "-c", config_.string(), "--set", "BLOCK_SIZE=4"});
  ASSERT_EQ(changed.exit_code, 0) << changed.err;
  EXPECT_THAT(changed.out, HasSubstr("built: BLOCK_SIZE changed: 8 -> 4"));
}

TEST_F(DataCli, BadInputExits2WithWhatToFix) {
  auto empty = run({"data", "-c", config_.string(), "--set", "BLOCK_SIZE=64"});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_THAT(empty.err, HasSubstr("error: the train split gives no block of BLOCK_SIZE=64 tokens"));
  EXPECT_THAT(empty.err, HasSubstr("Lower BLOCK_SIZE"));
  // A validation split too small for a block is fixed there, not with BLOCK_SIZE.
  std::string twenty;
  for (int i = 0; i < 20; ++i) twenty += "{\"text\": \"abcdefghij\"}\n";
  dir_.write("twenty.jsonl", twenty);
  auto small_valid = run({"data", "-c", config_.string(), "--set", "DATA_PATH=twenty.jsonl", "--set", "BLOCK_SIZE=16",
                          "--set", "VALID_SPLIT=", "--set", "VALID_FRACTION=0.05"});
  EXPECT_EQ(small_valid.exit_code, 2);
  EXPECT_THAT(small_valid.err, HasSubstr("the validation split gives no block"));
  EXPECT_THAT(small_valid.err, HasSubstr("Raise VALID_FRACTION (it is 0.05)"));
  EXPECT_THAT(small_valid.err, Not(HasSubstr("Lower BLOCK_SIZE")));
  // One token in all: no BLOCK_SIZE (at least 2) can help, so none is suggested.
  dir_.write("one.jsonl", "{\"text\": \"a\"}\n");
  auto one = run({"data", "-c", config_.string(), "--set", "DATA_PATH=one.jsonl", "--set", "BLOCK_SIZE=2"});
  EXPECT_EQ(one.exit_code, 2);
  EXPECT_THAT(one.err, HasSubstr("1 row, 1 token in all, at most 1 in one group"));
  EXPECT_THAT(one.err, HasSubstr("Add data: a block needs at least 2 tokens"));
  EXPECT_THAT(one.err, ::testing::Not(HasSubstr("BLOCK_SIZE=1")));

  auto column = run({"data", "-c", config_.string(), "--set", "TEXT_COLUMN=prompt"});
  EXPECT_EQ(column.exit_code, 2);
  EXPECT_THAT(column.err, HasSubstr("no column \"prompt\"; the columns are: text"));

  // Paths in messages can hold the token (expanded into them): masked as in `config`.
  const auto leak_config = dir_.write("leak.env", testing::read_file(config_) +
                                                      "HF_TOKEN=plainsecretvalue99\nMODEL_NAME=/nonexistent/${HF_TOKEN}\n");
  // `data` without the model warns (and writes DATA_FILE); `train` fails.
  for (const char* command : {"data", "train"}) {
    auto leaked = run({command, "-c", leak_config.string()});
    EXPECT_EQ(leaked.exit_code, std::string(command) == "data" ? 0 : 2) << leaked.err;
    EXPECT_EQ(leaked.err.find("plainsecretvalue99"), std::string::npos) << leaked.err;
    EXPECT_EQ(leaked.out.find("plainsecretvalue99"), std::string::npos) << leaked.out;
    EXPECT_THAT(leaked.err, HasSubstr("/nonexistent/***"));
  }

  auto nodata = run({"data", "-c", config_.string(), "--set", "DATA_PATH=org/absent"});
  EXPECT_EQ(nodata.exit_code, 2);
  EXPECT_THAT(nodata.err, HasSubstr("no dataset found"));
  EXPECT_THAT(nodata.err, HasSubstr("datasets--org--absent"));
}

// DATA_FILE is overwritten by `data`, so it may only name a data file of ours (or nothing yet):
// a user's other file, a split file, a file of the model folder, or a folder is refused, and left
// as it was. A run that fails leaves the previous DATA_FILE as it was too.
TEST_F(DataCli, DataFileNeverOverwritesSomethingElse) {
  dir_.write("split/train.jsonl", "{\"text\": \"### Human: hi ### Assistant: hello there\"}\n");
  dir_.write("split/test.jsonl", "{\"text\": \"### Human: a ### Assistant: b\"}\n");
  const std::string notes = "my notes, not a data file\n";
  dir_.write("notes.txt", notes);
  const std::string tokenizer = testing::read_file(dir_.path() / "model" / "tokenizer.json");
  const std::string test_split = testing::read_file(dir_.path() / "split" / "test.jsonl");
  auto refused = [&](std::vector<std::string> sets, const std::string& said) {
    std::vector<std::string> args = {"data", "-c", config_.string()};
    for (auto& kv : sets) args.insert(args.end(), {"--set", kv});
    auto r = run(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr(said));
    EXPECT_THAT(r.err, HasSubstr("refusing to overwrite it"));
  };
  refused({"DATA_PATH=split", "VALID_SPLIT=test", "DATA_FILE=split/test.jsonl"}, "is a file of the validation split");
  // A split this run does not read is data all the same (its header would have passed).
  dir_.write("split/valid.csv", "text\nmy held-out row\n");
  const std::string valid_csv = testing::read_file(dir_.path() / "split" / "valid.csv");
  refused({"DATA_PATH=split", "DATA_FILE=split/valid.csv"}, "is a data file of DATA_PATH split (its 'validation' split)");
  EXPECT_EQ(testing::read_file(dir_.path() / "split" / "valid.csv"), valid_csv);
  // A device or a FIFO is never replaced by a file (nor waited on).
  ASSERT_EQ(::mkfifo((dir_.path() / "fifo").c_str(), 0600), 0);
  refused({"DATA_FILE=fifo"}, "is not a regular file (a device, FIFO or socket)");
  EXPECT_TRUE(fs::is_fifo(dir_.path() / "fifo"));
  fs::create_symlink("/dev/null", dir_.path() / "null-link");
  refused({"DATA_FILE=null-link"}, "is not a regular file");
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  refused({"DATA_FILE=notes.txt"}, "its first line is not the one-column CSV header \"text\"");
  // A CSV with the text column and more is someone's data (ours would drop the label column).
  const std::string labels = "text,label\n\"good movie\",1\n";
  dir_.write("labels.csv", labels);
  refused({"DATA_FILE=labels.csv"}, "but \"text,label\"");
  EXPECT_EQ(testing::read_file(dir_.path() / "labels.csv"), labels);
  refused({"DATA_FILE=model/tokenizer.json"}, "is a file of the model folder");
  refused({"DATA_FILE=out/new/"}, "names a folder");
  refused({"DATA_FILE=split"}, "is a folder");
  EXPECT_EQ(testing::read_file(dir_.path() / "notes.txt"), notes);
  EXPECT_EQ(testing::read_file(dir_.path() / "model" / "tokenizer.json"), tokenizer);
  EXPECT_EQ(testing::read_file(dir_.path() / "split" / "test.jsonl"), test_split);
  EXPECT_FALSE(fs::exists(dir_.path() / "out" / "new"));

  // Ours is replaced; but not by a run that fails.
  auto ok = run({"data", "-c", config_.string()});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  const std::string written = testing::read_file(dir_.path() / "train.csv");
  refused({"DATA_FILE=out/proj/autotrain-data/manifest.json"}, "is a file of the token cache");
  auto again = run({"data", "-c", config_.string(), "--set", "BLOCK_SIZE=4"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto failed = run({"data", "-c", config_.string(), "--set", "BLOCK_SIZE=64", "--set", "DATA_PATH=split"});
  EXPECT_EQ(failed.exit_code, 2) << failed.err;
  EXPECT_THAT(failed.err, HasSubstr("gives no block"));
  EXPECT_EQ(testing::read_file(dir_.path() / "train.csv"), written) << "a failed run rewrote DATA_FILE";
  // Nor by one that fails while writing the cache (a full disk; here a folder in the way).
  dir_.write("rows.jsonl", "{\"text\": \"### Human: other ### Assistant: rows now\"}\n");
  fs::remove(dir_.path() / "out" / "proj" / "autotrain-data" / "train.safetensors");
  fs::create_directories(dir_.path() / "out" / "proj" / "autotrain-data" / "train.safetensors" / "in-the-way");
  auto cache_failed = run({"data", "-c", config_.string(), "--set", "BLOCK_SIZE=4"});
  EXPECT_EQ(cache_failed.exit_code, 1) << cache_failed.err;
  EXPECT_EQ(testing::read_file(dir_.path() / "train.csv"), written) << "a run that failed on the cache rewrote DATA_FILE";
  fs::remove_all(dir_.path() / "out" / "proj" / "autotrain-data" / "train.safetensors");
  // A block file a killed run (kill -9) was writing is removed by the next run.
  const auto leftover = dir_.write("out/proj/autotrain-data/.train.safetensors.tmp-0123abcd", "half a file");
  auto after_kill = run({"data", "-c", config_.string(), "--set", "BLOCK_SIZE=4"});
  EXPECT_EQ(after_kill.exit_code, 0) << after_kill.err;
  EXPECT_FALSE(fs::exists(leftover));

  // What this project's `data` wrote is replaced whatever its header (TEXT_COLUMN changed).
  dir_.write("cols/a.jsonl", "{\"prompt\": \"### Human: hi ### Assistant: hello there\"}\n");
  dir_.write("cols/b.jsonl", "{\"body\": \"### Human: hi ### Assistant: hello there\"}\n");
  auto prompt = run({"data", "-c", config_.string(), "--set", "DATA_PATH=cols/a.jsonl", "--set", "TEXT_COLUMN=prompt",
                     "--set", "DATA_FILE=cols.csv"});
  ASSERT_EQ(prompt.exit_code, 0) << prompt.err;
  auto body = run({"data", "-c", config_.string(), "--set", "DATA_PATH=cols/b.jsonl", "--set", "TEXT_COLUMN=body",
                   "--set", "DATA_FILE=cols.csv"});
  EXPECT_EQ(body.exit_code, 0) << body.err;
  EXPECT_THAT(testing::read_file(dir_.path() / "cols.csv"), ::testing::StartsWith("body\n"));
}

// A DATA_FILE that `data` wrote inside the DATA_PATH folder is its output for every project, not
// only the one that wrote it (the tutorial's -p PID gives each run its own project folder): the
// next project reads the source files again, so an edit of them is seen, and replaces the file.
TEST_F(DataCli, DataFileOfAnotherProjectIsNotReadBack) {
  dir_.write("d/guanaco.jsonl", "{\"text\": \"### Human: first ### Assistant: row\"}\n");
  auto data = [&](const std::string& project) {
    return run({"data", "-c", config_.string(), "--set", "DATA_PATH=d", "--set", "DATA_FILE=d/train.csv", "--set",
                "AUTOTRAIN_PROJECT_NAME=out/" + project});
  };
  auto first = data("p1");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_TRUE(fs::exists(dir_.path() / "d" / ".train.csv.autotrain.json")) << "the marker beside DATA_FILE";
  dir_.write("d/guanaco.jsonl", "{\"text\": \"### Human: first ### Assistant: row\"}\n"
                                "{\"text\": \"### Human: second ### Assistant: row\"}\n");
  auto second = data("p2");
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(second.err, Not(HasSubstr("the train split's own file")));
  EXPECT_THAT(testing::read_file(dir_.path() / "d" / "train.csv"), HasSubstr("second"));
  // Once the user edits it, it is theirs: the train split's own file again.
  const std::string mine = "text\n### Human: my own row ### Assistant: mine to keep\n";
  dir_.write("d/train.csv", mine);
  auto third = data("p3");
  EXPECT_EQ(third.exit_code, 0) << third.err;
  EXPECT_THAT(third.err, HasSubstr("the train split's own file"));
  EXPECT_EQ(testing::read_file(dir_.path() / "d" / "train.csv"), mine);
  // A DATA_FILE made from another DATA_PATH is data like any other file of its folder (the
  // tutorial's order: dataload.py writes ./train.csv, training reads DATA_PATH=.).
  auto elsewhere = run({"data", "-c", config_.string(), "--set", "DATA_PATH=d", "--set", "DATA_FILE=e/train.csv",
                        "--set", "AUTOTRAIN_PROJECT_NAME=out/p4"});
  ASSERT_EQ(elsewhere.exit_code, 0) << elsewhere.err;
  dir_.write("e/notes.txt", "not the data\n");
  auto from_e = run({"data", "-c", config_.string(), "--set", "DATA_PATH=e", "--set", "DATA_FILE=out/e.csv", "--set",
                     "AUTOTRAIN_PROJECT_NAME=out/p5", "--set", "VALID_SPLIT="});
  ASSERT_EQ(from_e.exit_code, 0) << from_e.err;
  EXPECT_THAT(testing::read_file(dir_.path() / "out" / "e.csv"), HasSubstr("my own row"));
  // A missing split lists the folder's files, not DATA_FILE (out/e.csv, made by data) elsewhere.
  auto missing = run({"data", "-c", config_.string(), "--set", "DATA_PATH=e", "--set", "DATA_FILE=out/e.csv", "--set",
                      "AUTOTRAIN_PROJECT_NAME=out/p5", "--set", "VALID_SPLIT=validation"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("Files there: notes.txt, train.csv. "));
}

// The project folder cannot be the DATA_PATH folder: its outputs would be the next run's data.
TEST_F(DataCli, ProjectFolderIsNotTheDataFolder) {
  dir_.write("same/train.jsonl", "{\"text\": \"### Human: hi ### Assistant: hello there\"}\n");
  auto r = run({"data", "-c", config_.string(), "--set", "DATA_PATH=same", "--set", "AUTOTRAIN_PROJECT_NAME=./same/"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("AUTOTRAIN_PROJECT_NAME ./same/ is the DATA_PATH folder"));
  EXPECT_FALSE(fs::exists(dir_.path() / "same" / "autotrain-data"));
  // Nor the model folder: the run's files would replace the base model's.
  const std::string tokenizer = testing::read_file(dir_.path() / "model" / "tokenizer.json");
  for (const char* command : {"data", "train"}) {
    auto model = run({command, "-c", config_.string(), "--set", "AUTOTRAIN_PROJECT_NAME=model"});
    EXPECT_EQ(model.exit_code, 2) << command << ": " << model.err;
    EXPECT_THAT(model.err, HasSubstr("AUTOTRAIN_PROJECT_NAME model is the MODEL_NAME folder"));
  }
  EXPECT_FALSE(fs::exists(dir_.path() / "model" / "autotrain-data"));
  EXPECT_EQ(testing::read_file(dir_.path() / "model" / "tokenizer.json"), tokenizer);
  auto inside = run({"data", "-c", config_.string(), "--set", "DATA_PATH=same", "--set",
                     "AUTOTRAIN_PROJECT_NAME=same/project"});
  EXPECT_EQ(inside.exit_code, 0) << inside.err;  // a project inside the data folder is skipped as a source
}

// Model files that do not load exit 1 in data and train, as in eval (the exit-code table: a
// model that fails to load); config and data mistakes exit 2.
TEST_F(DataCli, BrokenModelFilesExit1) {
  const fs::path config_json = dir_.path() / "model" / "config.json";
  const std::string good = testing::read_file(config_json);
  dir_.write("model/config.json", "{\"max_position_embeddings\": 64,");
  for (const char* command : {"data", "train"}) {
    auto r = run({command, "-c", config_.string()});
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("config.json: not valid JSON: parse error")) << command;
  }
  dir_.write("model/config.json", good);
  fs::path tokenizer = dir_.path() / "model" / "tokenizer.json";
  ASSERT_TRUE(fs::exists(tokenizer));
  dir_.write("model/tokenizer.json", "{\"model\": 3}");
  auto r = run({"data", "-c", config_.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cannot load its tokenizer"));
}

// While another process holds the project folder (here: this test), data and train refuse to
// start, naming that process; neither writes anything there.
TEST_F(DataCli, ABusyProjectFolderIsRefused) {
  std::optional<io::ProjectLock> held(std::in_place, dir_.path() / "out/proj");
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const std::string holder = "(pid " + std::to_string(getpid()) + " on " + host + ")";
  for (const char* command : {"data", "train"}) {
    auto r = run({command, "-c", config_.string()});
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("another autotrain process " + holder + " is using this project folder")) << command;
  }
  EXPECT_FALSE(fs::exists(dir_.path() / "out/proj/autotrain-data"));
  EXPECT_FALSE(fs::exists(dir_.path() / "train.csv"));
  held.reset();
  auto r = run({"data", "-c", config_.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // A project "folder" that is a file is the config's mistake (exit 2), named as such.
  dir_.write("afile", "x");
  auto file = run({"data", "-c", config_.string(), "--set", "AUTOTRAIN_PROJECT_NAME=afile"});
  EXPECT_EQ(file.exit_code, 2) << file.err;
  EXPECT_THAT(file.err, HasSubstr("AUTOTRAIN_PROJECT_NAME afile: cannot create the project folder"));
}

}  // namespace
}  // namespace autotrain::data
