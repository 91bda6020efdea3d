// Block building on plain ids: AutoTrain's per-batch grouping over 4 contiguous shards, trl's
// EOS-joined packing, and completions-only masks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "autotrain/data/blocks.h"

namespace autotrain::data {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

std::vector<Ids> examples(size_t n, size_t len) {
  std::vector<Ids> out;
  for (size_t i = 0; i < n; ++i) out.push_back(Ids(len, static_cast<int32_t>(i)));
  return out;
}

TEST(GroupTexts, OneBatchConcatenatesAndDropsTheRemainder) {
  std::vector<Ids> ids{{1, 2, 3}, {4, 5}, {6, 7, 8, 9}};
  auto b = group_texts(ids, {}, 4, /*num_shards=*/1);
  EXPECT_EQ(b.count, 2);
  EXPECT_THAT(b.input_ids, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
  EXPECT_EQ(b.labels, b.input_ids);
  EXPECT_EQ(b.tokens, 9);
  EXPECT_EQ(b.dropped, 1);
}

TEST(GroupTexts, FourContiguousShardsLikeDatasets) {
  // 10 rows -> shards of 3, 3, 2, 2 rows (n/4, one more for the first n%4), each grouped alone.
  auto ids = examples(10, 1);
  auto b = group_texts(ids, {}, 2);
  // shard 0: rows 0,1,2 -> block [0,1], row 2 dropped; shard 1: [3,4]; shard 2: [6,7]; shard 3: [8,9].
  EXPECT_THAT(b.input_ids, ElementsAre(0, 1, 3, 4, 6, 7, 8, 9));
  EXPECT_EQ(b.dropped, 2);
  // Fewer rows than shards: one shard per row (datasets lowers num_proc).
  auto small = group_texts(examples(3, 3), {}, 2);
  EXPECT_EQ(small.count, 3);
  EXPECT_EQ(small.dropped, 3);
}

TEST(GroupTexts, ThousandRowBatchesInsideEachShard) {
  // 4,010 rows of 1 token: shards of 1003, 1003, 1002, 1002 rows; each has a 1000-row batch and
  // a 2- or 3-row tail. Blocks of 7: 1000 -> 142 blocks (6 left), tail of 3 or 2 -> none.
  auto ids = examples(4010, 1);
  auto b = group_texts(ids, {}, 7);
  EXPECT_EQ(b.count, 4 * 142);
  EXPECT_EQ(b.dropped, 4010 - 4 * 142 * 7);
  EXPECT_EQ(b.largest_group, 1000);
  // The second shard starts at row 1003.
  EXPECT_EQ(b.input_ids[142 * 7], 1003);
}

TEST(GroupTexts, CarriesLabels) {
  std::vector<Ids> ids{{1, 2}, {3, 4}};
  std::vector<Ids> labels{{-100, 2}, {-100, 4}};
  auto b = group_texts(ids, labels, 4, 1);
  EXPECT_THAT(b.labels, ElementsAre(-100, 2, -100, 4));
}

TEST(PackConstantLength, EosAfterEveryExampleRemainderDropped) {
  std::vector<Ids> ids{{1, 2}, {3}, {4, 5, 6}};
  std::vector<size_t> chars{2, 1, 3};
  auto b = pack_constant_length(ids, {}, chars, 99, 3);
  // 1 2 E 3 E 4 5 6 E -> [1 2 E] [3 E 4] [5 6 E]
  EXPECT_THAT(b.input_ids, ElementsAre(1, 2, 99, 3, 99, 4, 5, 6, 99));
  EXPECT_EQ(b.count, 3);
  EXPECT_EQ(b.dropped, 0);
  EXPECT_EQ(b.tokens, 9);
}

TEST(PackConstantLength, BuffersEndAfterTheExampleThatCrossesTheCharacterLimit) {
  // Buffer limit 3 * 1.0 * 2 = 6 characters: examples of 3 chars -> buffers {0, 1}, {2, 3}, {4}.
  std::vector<Ids> ids{{1, 1, 1}, {2, 2, 2}, {3, 3, 3}, {4, 4, 4}, {5, 5, 5}};
  std::vector<size_t> chars(5, 3);
  auto b = pack_constant_length(ids, {}, chars, 0, 3, /*chars_per_token=*/1.0, /*num_of_sequences=*/2);
  // each two-example buffer: 1 1 1 0 2 2 2 0 -> 2 blocks, 2 dropped; last: 5 5 5 0 -> 1 block, 1 dropped
  EXPECT_THAT(b.input_ids, ElementsAreArray({1, 1, 1, 0, 2, 2, 3, 3, 3, 0, 4, 4, 5, 5, 5}));
  EXPECT_EQ(b.dropped, 5);
  EXPECT_EQ(b.largest_group, 8);
}

TEST(MaskPrompts, EverythingUpToTheLastTemplateIsIgnored) {
  std::vector<Ids> ids{{5, 6, 7, 8, 9, 7, 8, 10}, {7, 1, 2}, {}, {7, 8}, {1, 2, 3, 7, 8, 4}};
  std::vector<Ids> templates{{7, 8}, {1, 2}};
  auto m = mask_prompts(ids, templates);
  // trl keeps the last occurrence: a multi-turn example trains on its final answer only.
  EXPECT_THAT(m.labels[0], ElementsAre(-100, -100, -100, -100, -100, -100, -100, 10));
  EXPECT_THAT(m.labels[1], ElementsAre(-100, -100, -100));  // the other spelling
  EXPECT_TRUE(m.labels[2].empty());
  EXPECT_THAT(m.labels[3], ElementsAre(-100, -100));
  EXPECT_THAT(m.labels[4], ElementsAre(-100, -100, -100, -100, -100, 4));  // the later of two spellings
  EXPECT_EQ(m.without_template, 0u);
  auto none = mask_prompts(std::vector<Ids>{{1, 3, 5}}, std::vector<Ids>{{7, 8}});
  EXPECT_THAT(none.labels[0], ElementsAre(-100, -100, -100));  // no template: masked whole, counted
  EXPECT_EQ(none.without_template, 1u);
}

TEST(MaskPrompts, InstructionMarkersTrainEveryAnswer) {
  // H = {1} starts a user turn, A = {2} an answer.
  constexpr int M = -100;
  std::vector<Ids> ids{{1, 30, 2, 40, 41, 1, 31, 2, 42},  // H x A y y H z A w: both answers
                       {2, 40, 1, 30, 2, 41},             // an answer before the first turn counts too
                       {1, 30, 2, 40, 2, 41, 1, 32},      // two answers in a row keep their own spans
                       {1, 30, 1, 31},                    // no answer
                       {9, 2, 40}};                       // no turn marker (trl masks it whole as well)
  auto m = mask_prompts(ids, std::vector<Ids>{{2}}, std::vector<Ids>{{1}});
  EXPECT_THAT(m.labels[0], ElementsAre(M, M, M, 40, 41, M, M, M, 42));
  EXPECT_THAT(m.labels[1], ElementsAre(M, 40, M, M, M, 41));
  EXPECT_THAT(m.labels[2], ElementsAre(M, M, M, 40, M, 41, M, M));
  EXPECT_THAT(m.labels[3], ElementsAre(M, M, M, M));
  EXPECT_THAT(m.labels[4], ElementsAre(M, M, M));
  EXPECT_EQ(m.without_template, 2u);
}

TEST(CountCodePoints, LikePythonLen) {
  EXPECT_EQ(count_code_points("abc"), 3u);
  EXPECT_EQ(count_code_points("ünï ✓ 日本"), 8u);
  EXPECT_EQ(count_code_points("🙂"), 1u);
}

}  // namespace
}  // namespace autotrain::data
