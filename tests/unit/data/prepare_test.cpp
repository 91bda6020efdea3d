// prepare_data end to end on a byte-level tokenizer (one id per byte, EOS = 256): blocks,
// masks, splits, DATA_FILE, and the token cache's reuse and rebuild reasons.
#include <gmock/gmock.h>
#include <nlohmann/json.hpp>
#include <gtest/gtest.h>

#include "autotrain/data/blocks.h"
#include "autotrain/data/prepare.h"
#include "autotrain/data/readers.h"
#include "autotrain/model/falcon_config.h"
#include "data_test_util.h"
#include "support/test_support.h"

namespace autotrain::data {
namespace {

namespace fs = std::filesystem;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Ne;
using ::testing::Not;
using autotrain::testing::TempDir;

class Prepare : public ::testing::Test {
 protected:
  void SetUp() override { test::write_byte_model(dir_.path() / "model", 64); }

  std::vector<std::string> base() const {
    return {"MODEL_NAME=" + (dir_.path() / "model").string(), "AUTOTRAIN_PROJECT_NAME=" + (dir_.path() / "proj").string(),
            "DATA_FILE=" + (dir_.path() / "out" / "train.csv").string(), "DATA_PATH=" + data_.string()};
  }
  PreparedData run(std::vector<std::string> extra, PrepareOptions o = {}) const {
    auto sets = base();
    sets.insert(sets.end(), extra.begin(), extra.end());
    return prepare_data(test::make_config(sets), o);
  }
  std::string error(std::vector<std::string> extra) const {
    try {
      run(std::move(extra));
    } catch (const DataError& e) {
      return e.what();
    }
    return "(no error)";
  }
  static std::vector<int32_t> block(const TokenBlocks& b, int64_t i) {
    auto s = b.ids(i);
    return {s.begin(), s.end()};
  }
  static std::vector<int32_t> labels(const TokenBlocks& b, int64_t i) {
    auto s = b.label(i);
    return {s.begin(), s.end()};
  }

  TempDir dir_;
  fs::path data_ = dir_.path() / "rows.jsonl";
};

TEST_F(Prepare, DefaultTrainerBlocksAndDataFile) {
  test::write_text(data_, "{\"text\": \"abcd\"}\n{\"text\": \"\"}\n{\"text\": \"efg\"}\n{\"text\": \"hi, \\\"x\\\"\\n\"}\n");
  auto d = run({"BLOCK_SIZE=2"});
  // 4 rows -> 4 shards of one row: "abcd" -> ab cd; "" -> nothing; "efg" -> ef (g dropped); ...
  ASSERT_EQ(d.train.block_size, 2);
  ASSERT_EQ(d.train.count, 2 + 1 + 4);
  EXPECT_THAT(block(d.train, 0), ElementsAre('a', 'b'));
  EXPECT_THAT(block(d.train, 2), ElementsAre('e', 'f'));
  EXPECT_THAT(labels(d.train, 2), ElementsAre('e', 'f'));
  EXPECT_EQ(d.train_stats.rows, 4);
  EXPECT_EQ(d.train_stats.skipped, 1);
  EXPECT_EQ(d.train_stats.tokens, 4 + 3 + 8);
  EXPECT_EQ(d.train_stats.dropped, 1);
  EXPECT_FALSE(d.valid);
  EXPECT_FALSE(d.reused);
  EXPECT_THAT(d.rebuild_reason, HasSubstr("no token cache yet"));
  EXPECT_THAT(d.summary, HasSubstr("train: 4 rows (1 skipped: empty text), 15 tokens -> 7 blocks of 2 (1 token dropped)"));
  EXPECT_EQ(d.cache_dir, dir_.path() / "proj" / "autotrain-data");
  for (auto f : {"manifest.json", "train.safetensors"}) EXPECT_TRUE(fs::exists(d.cache_dir / f)) << f;
  // DATA_FILE: the whole train split, as the tutorial's dataload.py wrote it.
  EXPECT_EQ(testing::read_file(dir_.path() / "out" / "train.csv"), "text\nabcd\n\"\"\nefg\n\"hi, \"\"x\"\"\n\"\n");
}

TEST_F(Prepare, AddEosAndSftPacking) {
  test::write_text(data_, "{\"text\": \"ab\"}\n{\"text\": \"c\"}\n");
  auto eos = run({"BLOCK_SIZE=3", "ADD_EOS_TOKEN=True"});
  // Two shards of one row each: "ab<eos>" -> one block; "c<eos>" -> none.
  ASSERT_EQ(eos.train.count, 1);
  EXPECT_THAT(block(eos.train, 0), ElementsAre('a', 'b', test::kEos));
  auto sft = run({"BLOCK_SIZE=3", "TRAINER=sft"});
  EXPECT_THAT(sft.rebuild_reason, HasSubstr("TRAINER changed: default -> sft"));
  // a b E c E -> [a b E], "c E" dropped
  ASSERT_EQ(sft.train.count, 1);
  EXPECT_THAT(block(sft.train, 0), ElementsAre('a', 'b', test::kEos));
  EXPECT_EQ(sft.train_stats.dropped, 2);

}

TEST_F(Prepare, CompletionsOnlyMasksThePrompt) {
  test::write_text(data_, "{\"text\": \"Q: x A: yz\"}\n{\"text\": \"no marker\"}\n");
  auto d = run({"BLOCK_SIZE=4", "TRAINER=sft", "RESPONSE_TEMPLATE=A:"});
  // Q : _ x | _ A : _ | y z E n | o _ m a | r k e r | (E dropped). Prompts through "A:" are
  // ignored; the example without the marker is ignored whole, its EOS separator included.
  constexpr int M = kIgnoreIndex;
  ASSERT_EQ(d.train.count, 5);
  EXPECT_THAT(labels(d.train, 0), ElementsAre(M, M, M, M));
  EXPECT_THAT(labels(d.train, 1), ElementsAre(M, M, M, ' '));
  EXPECT_THAT(block(d.train, 2), ElementsAre('y', 'z', test::kEos, 'n'));
  EXPECT_THAT(labels(d.train, 2), ElementsAre('y', 'z', test::kEos, M));
  EXPECT_THAT(labels(d.train, 4), ElementsAre(M, M, M, M));
  EXPECT_EQ(d.train_stats.without_template, 1);
  EXPECT_THAT(d.summary, HasSubstr("1 examples without the response template, fully masked"));
  // Blocks 0, 3 and 4 hold no label past their first position: nothing to learn from them.
  EXPECT_EQ(d.train_stats.unscored_blocks, 3);
  EXPECT_THAT(d.summary, HasSubstr("; 3 blocks with no token to learn from (prompt tokens only)"));
  // TRAIN_ON_COMPLETIONS_ONLY=True with the template: the same masks (and the count, from the cache).
  auto same = run({"BLOCK_SIZE=4", "TRAINER=sft", "RESPONSE_TEMPLATE=A:", "TRAIN_ON_COMPLETIONS_ONLY=True"});
  EXPECT_TRUE(same.reused);
  EXPECT_EQ(same.train_stats.unscored_blocks, 3);
}

// A template no example contains masks every label: refused (training would report a loss of 0
// and change nothing), for the train and the validation split, and the DATA_FILE is not written.
TEST_F(Prepare, AMaskThatHidesEveryLabelIsRefused) {
  test::write_text(data_, "{\"text\": \"Q: x A: yz\"}\n{\"text\": \"no marker\"}\n");
  EXPECT_THAT(error({"BLOCK_SIZE=4", "RESPONSE_TEMPLATE=B:"}),
              HasSubstr("the train split has no token to learn from: the completions-only mask hides every label (2 of "
                        "its 2 examples do not contain RESPONSE_TEMPLATE 'B:')"));
  EXPECT_FALSE(fs::exists(dir_.path() / "out" / "train.csv"));
  // One example with the marker is enough.
  EXPECT_NO_THROW(run({"BLOCK_SIZE=4", "RESPONSE_TEMPLATE=A:"}));
}

// BLOCK_SIZE 1 predicts nothing (a block's first token has no label): a config error.
TEST_F(Prepare, BlockSizeOneIsAConfigError) {
  test::write_text(data_, "{\"text\": \"abcdef\"}\n");
  EXPECT_THROW(run({"BLOCK_SIZE=1"}), config::ConfigError);
  EXPECT_THROW(run({"BLOCK_SIZE=-1", "MODEL_MAX_LENGTH=1"}), config::ConfigError);
}

TEST_F(Prepare, InstructionTemplateTrainsEveryAnswer) {
  test::write_text(data_, "{\"text\": \"H:a A:bc H:d A:e\"}\n");
  constexpr int M = kIgnoreIndex;
  // Default trainer, one row, block 16: "H:a A:bc H:d A:e" is 16 bytes.
  auto last = run({"BLOCK_SIZE=16", "RESPONSE_TEMPLATE=A:"});
  ASSERT_EQ(last.train.count, 1);
  EXPECT_THAT(labels(last.train, 0), ElementsAre(M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, 'e'));
  auto every = run({"BLOCK_SIZE=16", "RESPONSE_TEMPLATE=A:", "INSTRUCTION_TEMPLATE=H:"});
  EXPECT_FALSE(every.reused) << "INSTRUCTION_TEMPLATE changes the labels, so the cache";
  EXPECT_THAT(labels(every.train, 0), ElementsAre(M, M, M, M, M, M, 'b', 'c', ' ', M, M, M, M, M, M, 'e'));
  // TRAIN_ON_COMPLETIONS_ONLY=False said outright: every token is trained on, templates or not.
  auto unmasked = run({"BLOCK_SIZE=16", "RESPONSE_TEMPLATE=A:", "INSTRUCTION_TEMPLATE=H:", "TRAIN_ON_COMPLETIONS_ONLY=False"});
  EXPECT_THAT(labels(unmasked.train, 0), Each(Ne(M)));
}

// DATA_PATH=. with the project folder and DATA_FILE (the default ./train.csv, which the folder
// lookup checks first) inside it: later runs read the user's rows, not what `data` wrote; a
// train.csv the user made is their data, and is never written over.
TEST_F(Prepare, WhatAutotrainWritesIsNotReadBackAsData) {
  const fs::path here = dir_.path() / "here";
  test::write_text(here / "rows.jsonl", "{\"text\": \"abcd\"}\n");
  const std::vector<std::string> sets = {"DATA_PATH=" + here.string(), "AUTOTRAIN_PROJECT_NAME=" + (here / "proj").string(),
                                         "DATA_FILE=" + (here / "train.csv").string(), "BLOCK_SIZE=2"};
  auto first = run(sets);
  EXPECT_EQ(first.train.count, 2);
  EXPECT_TRUE(fs::exists(here / "train.csv"));
  auto second = run(sets);
  EXPECT_TRUE(second.reused) << second.rebuild_reason;
  EXPECT_THAT(second.train_stats.files, ElementsAre((here / "rows.jsonl").string()));
  test::write_text(here / "rows.jsonl", "{\"text\": \"abcd\"}\n{\"text\": \"efgh\"}\n");
  auto third = run(sets);
  EXPECT_FALSE(third.reused);
  EXPECT_EQ(third.train.count, 4);
  EXPECT_EQ(autotrain::testing::read_file(here / "train.csv"), "text\nabcd\nefgh\n");

  const fs::path mine = dir_.path() / "mine";
  test::write_text(mine / "train.csv", "text,label\nabcd,1\n");
  const std::vector<std::string> own = {"DATA_PATH=" + mine.string(), "AUTOTRAIN_PROJECT_NAME=" + (mine / "proj").string(),
                                        "DATA_FILE=" + (mine / "train.csv").string(), "BLOCK_SIZE=2"};
  for (int i = 0; i < 2; ++i) {
    auto d = run(own);
    EXPECT_EQ(d.train.count, 2);
    EXPECT_TRUE(d.data_file.empty());
    EXPECT_EQ(autotrain::testing::read_file(mine / "train.csv"), "text,label\nabcd,1\n");
  }
}

// The tutorial's PROJECT_ID changes the project folder between runs over the same DATA_PATH=.:
// another project's folder and the DATA_FILE its `data` wrote are still not data.
TEST_F(Prepare, OtherProjectsOutputsAreNotDataEither) {
  const fs::path here = dir_.path() / "shared";
  test::write_text(here / "mydata.jsonl", "{\"text\": \"abcd\"}\n");
  auto sets = [&](const std::string& project) {
    return std::vector<std::string>{"DATA_PATH=" + here.string(), "AUTOTRAIN_PROJECT_NAME=" + (here / "out" / project).string(),
                                    "DATA_FILE=" + (here / "train.csv").string(), "BLOCK_SIZE=2"};
  };
  auto a = run(sets("finetune-a"));
  EXPECT_THAT(a.train_stats.files, ElementsAre((here / "mydata.jsonl").string()));
  auto b = run(sets("finetune-b"));
  EXPECT_THAT(b.train_stats.files, ElementsAre((here / "mydata.jsonl").string())) << "not a's train.csv";
  auto a_again = run(sets("finetune-a"));
  EXPECT_TRUE(a_again.reused) << a_again.rebuild_reason;
  // Once the user edits what `data` wrote, it is theirs: data again (here, the only train file).
  test::write_text(here / "train.csv", "text\nwxyz\n");
  fs::remove(here / "mydata.jsonl");
  auto edited = run(sets("finetune-c"));
  EXPECT_THAT(edited.train_stats.files, ElementsAre((here / "train.csv").string()));
}

// The cache is keyed by where the data is, not by how DATA_PATH spells it: a job started from
// another folder (../d here, ../../d there) reuses it.
TEST_F(Prepare, AnotherSpellingOfTheSameDataPathReusesTheCache) {
  test::write_text(data_, "{\"text\": \"" + std::string(40, 'z') + "\"}\n");
  auto first = run({"BLOCK_SIZE=4"});
  EXPECT_FALSE(first.reused);
  const fs::path other = dir_.path() / "." / "sub" / ".." / data_.filename();
  fs::create_directories(dir_.path() / "sub");
  auto again = run({"BLOCK_SIZE=4", "DATA_PATH=" + other.string()});
  EXPECT_TRUE(again.reused) << again.rebuild_reason;
}

TEST_F(Prepare, BlockSizeDefaultsAndCap) {
  test::write_text(data_, "{\"text\": \"" + std::string(200, 'z') + "\"}\n");
  EXPECT_EQ(run({}).train.block_size, 64);  // -1: min(tokenizer 2048, 1024), then max_position_embeddings 64
  // The tokenizer says 2048: MODEL_MAX_LENGTH, used only above 2048, changes nothing.
  EXPECT_EQ(run({"MODEL_MAX_LENGTH=32"}).train.block_size, 64);
  auto capped = run({"BLOCK_SIZE=100"});
  EXPECT_EQ(capped.train.block_size, 64);
  EXPECT_EQ(capped.train.count, 3);
}

// AutoTrain 0.6.44's rule (autotrain-behaviour.md 2.4 steps 6 and 10): the tokenizer's
// model_max_length is the limit (MODEL_MAX_LENGTH when it is above 2048, or when transformers'
// "no limit" 1e30 stands there); -1 is min(limit, 1024); a larger BLOCK_SIZE is cut to it.
TEST_F(Prepare, BlockSizeFollowsTheTokenizersLimitAsAutoTrain) {
  test::write_text(data_, "{\"text\": \"" + std::string(4000, 'z') + "\"}\n");
  const fs::path model = dir_.path() / "model";
  test::write_byte_model(model, 2048);
  auto with_limit = [&](const std::string& limit) {
    test::write_text(model / "tokenizer_config.json", "{\"eos_token\": \"<|endoftext|>\", \"model_max_length\": " + limit + "}");
  };
  with_limit("16");
  EXPECT_EQ(run({}).train.block_size, 16);
  std::string warning;
  EXPECT_EQ(effective_block_size(test::make_config({"BLOCK_SIZE=40"}), model, &warning), 16);
  EXPECT_THAT(warning, HasSubstr("BLOCK_SIZE=40 is larger than the tokenizer's model_max_length (16); using 16"));
  with_limit("2048");
  EXPECT_EQ(run({}).train.block_size, 1024);  // -1: at most 1024
  EXPECT_EQ(run({"BLOCK_SIZE=1500"}).train.block_size, 1500);
  with_limit("1e30");
  EXPECT_EQ(run({"MODEL_MAX_LENGTH=48"}).train.block_size, 48);
  EXPECT_EQ(run({"MODEL_MAX_LENGTH=48", "BLOCK_SIZE=100"}).train.block_size, 48);
  with_limit("4096");
  EXPECT_EQ(run({"MODEL_MAX_LENGTH=2000"}).train.block_size, 1024);
}

// max_position_embeddings caps the blocks: 0 divided by zero (SIGFPE), -1 gave negative sizes.
TEST_F(Prepare, MaxPositionsMustBePositive) {
  test::write_text(data_, "{\"text\": \"abcdef\"}\n");
  const fs::path config = dir_.path() / "model" / "config.json";
  auto j = nlohmann::json::parse(autotrain::testing::read_file(config));
  for (int bad : {0, -1}) {
    j["max_position_embeddings"] = bad;
    test::write_text(config, j.dump());
    try {
      run({"BLOCK_SIZE=2"});
      ADD_FAILURE() << bad << " accepted";
    } catch (const model::ModelError& e) {  // the model's files, not the config: exit 1, as in eval
      EXPECT_THAT(e.what(), HasSubstr("\"max_position_embeddings\" must be a positive integer")) << bad;
    }
  }
}

TEST_F(Prepare, EmptyResultSaysWhatToLower) {
  test::write_text(data_, "{\"text\": \"tiny\"}\n");
  auto msg = error({"BLOCK_SIZE=16"});
  EXPECT_THAT(msg, HasSubstr("no block of BLOCK_SIZE=16 tokens"));
  EXPECT_THAT(msg, HasSubstr("4 tokens"));
  EXPECT_THAT(msg, HasSubstr("--set BLOCK_SIZE=4"));
}

TEST_F(Prepare, NoTextAtAllIsNotABlockSizeProblem) {
  test::write_text(data_, "{\"text\": \"\"}\n{\"text\": null}\n");
  auto msg = error({"BLOCK_SIZE=2"});
  EXPECT_THAT(msg, HasSubstr("all 2 rows have an empty or null \"text\""));
  EXPECT_THAT(msg, ::testing::Not(HasSubstr("BLOCK_SIZE")));
  test::write_text(data_, "");
  EXPECT_THAT(error({"BLOCK_SIZE=2"}), HasSubstr("no rows"));
}

TEST_F(Prepare, BadInputsAreDataErrors) {
  test::write_text(data_, "{\"prompt\": \"x\"}\n");
  EXPECT_THAT(error({}), HasSubstr("no column \"text\"; the columns are: prompt"));
  EXPECT_THAT(error({"TEXT_COLUMN=prompt", "VALID_SPLIT=test"}), HasSubstr("a single file"));
  // A missing model (train's path: `data` writes DATA_FILE without one): where it was looked for.
  const std::string no_model = error({"MODEL_NAME=" + (dir_.path() / "nope").string()});
  EXPECT_THAT(no_model, HasSubstr("MODEL_NAME: model '" + (dir_.path() / "nope").string() + "' not found"));
  EXPECT_THAT(error({"DATA_PATH=" + (dir_.path() / "nothing.jsonl").string()}), HasSubstr("no dataset found"));
  // A project "folder" that is a file: the setting that names it is blamed, not DATA_FILE.
  test::write_text(data_, "{\"text\": \"abcdef\"}\n");
  test::write_text(dir_.path() / "afile", "x");
  auto blocked = error({"BLOCK_SIZE=2", "AUTOTRAIN_PROJECT_NAME=" + (dir_.path() / "afile").string()});
  EXPECT_THAT(blocked, HasSubstr("AUTOTRAIN_PROJECT_NAME"));
  EXPECT_THAT(blocked, Not(HasSubstr("DATA_FILE")));
  auto no_data_file = [&](std::vector<std::string> sets) {
    PrepareOptions as_train;
    as_train.write_data_file = false;
    try {
      run(std::move(sets), as_train);
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_THAT(no_data_file({"BLOCK_SIZE=2", "AUTOTRAIN_PROJECT_NAME=" + (dir_.path() / "afile").string()}),
              HasSubstr("AUTOTRAIN_PROJECT_NAME")) << "train's path (no DATA_FILE written) too";
}

// The tutorial's data step (dataload.py) needed no model: `data` writes DATA_FILE before the
// model is downloaded and leaves the token cache to `train`. A model that is there but broken is
// still an error, and so are bad data.
TEST_F(Prepare, DataWithoutTheModelWritesDataFileOnly) {
  data_ = dir_.path() / "ds";
  test::write_text(data_ / "train.jsonl", "{\"text\": \"abcdef\"}\n{\"text\": \"\"}\n{\"text\": \"a,b\"}\n");
  test::write_text(data_ / "test.jsonl", "{\"text\": \"xyz\"}\n");
  PrepareOptions as_data;
  as_data.allow_missing_model = true;
  const std::string missing = "MODEL_NAME=" + (dir_.path() / "nope").string();
  auto d = run({missing, "VALID_SPLIT=test"}, as_data);
  EXPECT_THAT(d.missing_model, HasSubstr("not found"));
  EXPECT_EQ(d.train.count, 0);
  EXPECT_THAT(d.summary, HasSubstr("train: 3 rows (1 skipped: empty text) (not tokenized)"));
  EXPECT_THAT(d.summary, HasSubstr("test: 1 row (not tokenized)"));
  EXPECT_EQ(testing::read_file(dir_.path() / "out" / "train.csv"), "text\nabcdef\n\"\"\n\"a,b\"\n");
  EXPECT_FALSE(fs::exists(d.cache_dir / "manifest.json"));
  // What DATA_FILE holds is ours: not read back as data by a later run over the same folder.
  EXPECT_TRUE(fs::exists(d.cache_dir / "data_file.json"));

  // Without the option (train), the same is an error naming the model.
  try {
    run({missing, "VALID_SPLIT=test"});
    ADD_FAILURE() << "no error without the model";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("MODEL_NAME"));
  }
  // Bad data is found all the same, and DATA_FILE is left as it was.
  const std::string written = testing::read_file(dir_.path() / "out" / "train.csv");
  test::write_text(data_ / "test.jsonl", "{\"text\": \"\"}\n");
  try {
    run({missing, "VALID_SPLIT=test"}, as_data);
    ADD_FAILURE() << "a validation split without text passed";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("the validation split has no text"));
  }
  try {
    run({missing, "VALID_SPLIT=", "VALID_FRACTION=0.1", "DATA_PATH=" + (data_ / "test.jsonl").string()}, as_data);
    ADD_FAILURE() << "a train split without text passed";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("the train split has no text"));
  }
  test::write_text(data_ / "one.jsonl", "{\"text\": \"abc\"}\n");
  try {
    run({missing, "VALID_SPLIT=", "VALID_FRACTION=0.1", "DATA_PATH=" + (data_ / "one.jsonl").string()}, as_data);
    ADD_FAILURE() << "VALID_FRACTION of one row passed";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("too few to hold any out"));
  }
  fs::remove(data_ / "one.jsonl");
  EXPECT_EQ(testing::read_file(dir_.path() / "out" / "train.csv"), written);
  test::write_text(data_ / "test.jsonl", "{\"prompt\": \"xyz\"}\n");
  try {
    run({missing, "VALID_SPLIT=test"}, as_data);
    ADD_FAILURE() << "a validation split without the column passed";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no column \"text\""));
  }
  // A model folder that is there but broken is not "not downloaded yet".
  fs::create_directories(dir_.path() / "broken");
  try {
    run({"MODEL_NAME=" + (dir_.path() / "broken").string()}, as_data);
    ADD_FAILURE() << "a model folder without config.json passed";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no config.json"));
  }
}

// DATA_FILE is plain CSV, as dataload.py wrote it: a compressed name would hold what it says it
// does not.
TEST_F(Prepare, ACompressedDataFileNameIsRefused) {
  test::write_text(data_, "{\"text\": \"abcdef\"}\n");
  EXPECT_THAT(error({"BLOCK_SIZE=2", "DATA_FILE=" + (dir_.path() / "out.csv.gz").string()}),
              HasSubstr("has a compression suffix, but DATA_FILE is written as plain CSV"));
  EXPECT_FALSE(fs::exists(dir_.path() / "out.csv.gz"));
}

TEST_F(Prepare, ValidSplitFromAFolder) {
  data_ = dir_.path() / "ds";
  test::write_text(data_ / "x_train.jsonl", "{\"text\": \"abcdef\"}\n");
  test::write_text(data_ / "x_eval.jsonl", "{\"text\": \"uvwxyz\"}\n");
  auto d = run({"BLOCK_SIZE=3", "VALID_SPLIT=test"});
  ASSERT_TRUE(d.valid);
  EXPECT_EQ(d.valid->count, 2);
  EXPECT_THAT(block(*d.valid, 1), ElementsAre('x', 'y', 'z'));
  EXPECT_EQ(d.valid_stats->split, "test");
  EXPECT_TRUE(fs::exists(d.cache_dir / "valid.safetensors"));
}

TEST_F(Prepare, ValidFractionIsSeededAndDeterministic) {
  std::string rows;
  for (int i = 0; i < 40; ++i) rows += "{\"text\": \"" + std::string(1, static_cast<char>('A' + i % 26)) + "xyz\"}\n";
  test::write_text(data_, rows);
  auto a = run({"BLOCK_SIZE=4", "VALID_FRACTION=0.25", "SEED=7"});
  ASSERT_TRUE(a.valid);
  EXPECT_EQ(a.valid_stats->rows, 10);
  EXPECT_EQ(a.train_stats.rows, 30);
  EXPECT_THAT(a.summary, HasSubstr("valid (held out of train: VALID_FRACTION=0.25, SEED=7): 10 rows"));
  auto firsts = [](const TokenBlocks& b) {
    std::string s;
    for (int64_t i = 0; i < b.count; ++i) s += static_cast<char>(b.ids(i)[0]);
    return s;
  };
  std::string valid_a = firsts(*a.valid);
  auto b = run({"BLOCK_SIZE=4", "VALID_FRACTION=0.25", "SEED=7"}, {.write_data_file = true, .force_rebuild = true});
  EXPECT_EQ(firsts(*b.valid), valid_a);
  auto c = run({"BLOCK_SIZE=4", "VALID_FRACTION=0.25", "SEED=8"});
  EXPECT_THAT(c.rebuild_reason, HasSubstr("SEED changed: 7 -> 8"));
  EXPECT_NE(firsts(*c.valid), valid_a);
  // DATA_FILE still holds all 40 rows.
  EXPECT_EQ(read_rows(dir_.path() / "out" / "train.csv").size(), 40u);
}

TEST_F(Prepare, CacheIsReusedUntilSomethingChanges) {
  test::write_text(data_, "{\"text\": \"abcdefgh\"}\n");
  auto first = run({"BLOCK_SIZE=4"});
  EXPECT_FALSE(first.reused);
  auto second = run({"BLOCK_SIZE=4"}, {.write_data_file = false});
  EXPECT_TRUE(second.reused);
  EXPECT_TRUE(second.rebuild_reason.empty());
  EXPECT_EQ(second.train.count, 2);
  EXPECT_THAT(block(second.train, 1), ElementsAre('e', 'f', 'g', 'h'));
  EXPECT_EQ(second.summary, first.summary);

  auto smaller = run({"BLOCK_SIZE=2"});
  EXPECT_FALSE(smaller.reused);
  EXPECT_THAT(smaller.rebuild_reason, HasSubstr("BLOCK_SIZE changed: 4 -> 2"));
  EXPECT_EQ(smaller.train.count, 4);

  test::write_text(data_, "{\"text\": \"abcdefgh\"}\n{\"text\": \"ij\"}\n");
  auto edited = run({"BLOCK_SIZE=2"});
  EXPECT_THAT(edited.rebuild_reason, HasSubstr("source file " + fs::absolute(data_).lexically_normal().string() + " changed"));
  EXPECT_EQ(edited.train.count, 5);

  // A touch without a change in content keeps the cache (the manifest records the SHA-256).
  fs::last_write_time(data_, fs::last_write_time(data_) + std::chrono::hours(1));
  EXPECT_TRUE(run({"BLOCK_SIZE=2"}).reused);

  // A damaged block file is noticed and rebuilt.
  test::write_text(edited.cache_dir / "train.safetensors", "garbage");
  auto repaired = run({"BLOCK_SIZE=2"});
  EXPECT_THAT(repaired.rebuild_reason, HasSubstr("do not match the manifest"));
  EXPECT_EQ(repaired.train.count, 5);
  EXPECT_THAT(run({"BLOCK_SIZE=2"}, {.force_rebuild = true}).rebuild_reason, HasSubstr("rebuild was asked for"));
}

}  // namespace
}  // namespace autotrain::data
