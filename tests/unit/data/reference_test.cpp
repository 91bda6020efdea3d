// The token cache's blocks against the Python stack: Falcon-7B's tokenizer through transformers'
// AutoTokenizer, grouped as AutoTrain 0.6.44 did (4 contiguous shards, 1000-row map batches),
// packed as trl's ConstantLengthDataset did, and masked as DataCollatorForCompletionOnlyLM does
// (tests/reference/data/group_reference.py). Over 4,000 rows, so the shards and batches matter.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "autotrain/data/prepare.h"
#include "data_test_util.h"
#include "support/reference_run.h"
#include "support/test_support.h"

namespace autotrain::data {
namespace {

namespace fs = std::filesystem;
using autotrain::testing::ReferenceRun;
using autotrain::testing::TempDir;

struct Case {
  std::string name;
  std::string trainer;
  int block_size;
  bool add_eos;
  std::string response_template;
  bool with_empty_rows;
  std::string instruction_template = "";
};

const std::vector<Case> kCases = {
    {"default_128", "default", 128, false, "", true},
    {"default_eos_96", "default", 96, true, "", true},
    {"default_masked_128", "default", 128, false, "### Assistant:", true},
    {"default_turns_128", "default", 128, false, "### Assistant:", true, "### Human:"},
    {"sft_128", "sft", 128, false, "", false},
};

// Guanaco-shaped rows of one to three turns and varied length (a fixed LCG), some last turns without
// the assistant marker, some with non-ASCII text; `empties` puts an empty row every 997 rows.
std::string make_rows(size_t n, bool empties) {
  static const char* kWords[] = {"the", "model", "answer", "question", "über", "naïve", "日本語", "data", "token",
                                 "falcon", "Python", "C++", "—", "42,", "\"quoted\"", "end.\n", "émoji 🙂", "and"};
  uint64_t state = 12345;
  auto next = [&] { return (state = state * 6364136223846793005ULL + 1442695040888963407ULL) >> 33; };
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    std::string text;
    if (!(empties && i % 997 == 500)) {
      for (size_t turn = 0, turns = 1 + next() % 3; turn < turns; ++turn) {
        text += "### Human:";
        for (size_t w = 0, m = 3 + next() % 30; w < m; ++w) text += std::string(" ") + kWords[next() % std::size(kWords)];
        // Only a row's last turn may lack the answer marker: where turns do not alternate, trl
        // pairs turn and answer markers by position and masks answers of later turns; we don't.
        if (turn + 1 < turns || next() % 10 != 0) text += "### Assistant:";
        for (size_t w = 0, m = 5 + next() % 60; w < m; ++w) text += std::string(" ") + kWords[next() % std::size(kWords)];
      }
    }
    out += nlohmann::json({{"text", text}, {"id", i}}).dump() + "\n";
  }
  return out;
}

TEST(DataReference, BlocksMatchTransformersAndAutoTrainGrouping) {
  auto shared = testing::env_var("AUTOTRAIN_SHARED_DIR");
  fs::path model = shared ? fs::path(*shared) / "data" / "falcon-7b" : fs::path();
  if (!shared || !fs::exists(model / "tokenizer.json")) GTEST_SKIP() << "../shared/data/falcon-7b is not there";
  if (!testing::env_var("AUTOTRAIN_PYTHON")) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest";

  TempDir dir;
  auto with_empty = dir.write("rows.jsonl", make_rows(4321, true));
  auto without_empty = dir.write("rows_full.jsonl", make_rows(4321, false));
  nlohmann::json cases = nlohmann::json::array();
  for (const auto& c : kCases)
    cases.push_back({{"name", c.name}, {"data", (c.with_empty_rows ? with_empty : without_empty).string()},
                     {"trainer", c.trainer}, {"block_size", c.block_size}, {"add_eos", c.add_eos},
                     {"response_template", c.response_template}, {"instruction_template", c.instruction_template}});
  auto cases_file = dir.write("cases.json", cases.dump());
  ReferenceRun ref("data/group_reference.py", {model.string(), cases_file.string()});
  ASSERT_TRUE(ref.ok()) << ref.log();

  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    auto cfg = test::make_config({"MODEL_NAME=" + model.string(),
                                  "DATA_PATH=" + (c.with_empty_rows ? with_empty : without_empty).string(),
                                  "AUTOTRAIN_PROJECT_NAME=" + (dir.path() / c.name).string(),
                                  "TRAINER=" + c.trainer, "BLOCK_SIZE=" + std::to_string(c.block_size),
                                  std::string("ADD_EOS_TOKEN=") + (c.add_eos ? "True" : "False"),
                                  "RESPONSE_TEMPLATE=" + c.response_template,
                                  "INSTRUCTION_TEMPLATE=" + c.instruction_template});
    auto d = prepare_data(cfg, {.write_data_file = false});
    std::ifstream in(ref.dir() / (c.name + ".json"));
    auto expected = nlohmann::json::parse(in);
    ASSERT_EQ(d.train.count, expected["count"].get<int64_t>());
    ASSERT_EQ(d.train.block_size, c.block_size);
    EXPECT_GT(d.train.count, 100);
    for (int64_t b = 0; b < d.train.count; ++b) {
      auto ids = d.train.ids(b);
      auto labels = d.train.label(b);
      ASSERT_EQ(std::vector<int32_t>(ids.begin(), ids.end()), expected["input_ids"][b].get<std::vector<int32_t>>())
          << "block " << b;
      ASSERT_EQ(std::vector<int32_t>(labels.begin(), labels.end()), expected["labels"][b].get<std::vector<int32_t>>())
          << "block " << b;
    }
  }
}

}  // namespace
}  // namespace autotrain::data
