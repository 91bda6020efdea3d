// `autotrain generate` and `chat` against transformers' generate() (+ PEFT), run at test time by
// tests/reference/model/generate_reference.py: greedy, seeded sampling and beam search (and beam
// sampling) give its tokens and its text, with and without an adapter, with its logits processors
// from the command line or generation_config.json; generation_config.json's eos ends the text; the
// warpers (temperature, top-k, top-p, min-p, typical, epsilon, eta) give its scores bit for bit;
// streamed text is the final text.
#include <algorithm>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "autotrain/model/sampling.h"
#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/torch.h"
#include "support/reference_run.h"
#include "support/test_support.h"

namespace autotrain::model {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

testing::ReferenceRun& oracle() {
  static testing::ReferenceRun run("model/generate_reference.py", {});
  return run;
}

class Generate : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!oracle().have_python()) GTEST_SKIP() << "AUTOTRAIN_PYTHON is not set: run through ctest (scripts/test.sh)";
    ASSERT_TRUE(oracle().ok()) << "the transformers reference script failed:\n" << oracle().log();
    auto bin = testing::env_var("AUTOTRAIN_BIN");
    ASSERT_TRUE(bin) << "AUTOTRAIN_BIN is not set (run through ctest)";
    bin_ = *bin;
    std::ifstream in(oracle().dir() / "expected.json");
    expected_ = nlohmann::json::parse(in);
  }

  const nlohmann::json& find_case(const std::string& name) const {
    for (const auto& c : expected_["cases"])
      if (c["name"] == name) return c;
    throw std::runtime_error("no case " + name);
  }

  // The command line that reproduces case `c` (temperature 0 = greedy, as the reference).
  std::vector<std::string> args_of(const nlohmann::json& c) const {
    std::vector<std::string> a = {bin_, "generate", "--model", (oracle().dir() / c["model"].get<std::string>()).string(),
                                  "--prompt", c["prompt"], "--max-new-tokens", "24", "--device", "cpu"};
    if (!c["adapter"].is_null()) {
      a.push_back("--adapter");
      a.push_back((oracle().dir() / c["adapter"].get<std::string>()).string());
    }
    if (!c["sampling"].is_null()) {
      const auto& s = c["sampling"];
      for (auto [flag, key] : {std::pair{"--temperature", "temperature"}, std::pair{"--top-k", "top_k"},
                               std::pair{"--top-p", "top_p"}, std::pair{"--seed", "seed"}}) {
        a.push_back(flag);
        a.push_back(s[key].dump());
      }
    }
    // transformers' logits processors the case asked generate() for.
    if (c.contains("processors"))
      for (auto [flag, key] : {std::pair{"--repetition-penalty", "repetition_penalty"},
                               std::pair{"--no-repeat-ngram-size", "no_repeat_ngram_size"},
                               std::pair{"--min-new-tokens", "min_new_tokens"}, std::pair{"--min-p", "min_p"},
                               std::pair{"--typical-p", "typical_p"}, std::pair{"--num-beams", "num_beams"}})
        if (c["processors"].contains(key)) {
          a.push_back(flag);
          a.push_back(c["processors"][key].dump());
        }
    return a;
  }

  std::string bin_;
  nlohmann::json expected_;
};

TEST_F(Generate, TokensAndTextAreTransformers) {
  for (const auto& c : expected_["cases"]) {
    auto args = args_of(c);
    args.push_back("--json");
    auto r = testing::run_command(args);
    ASSERT_EQ(r.exit_code, 0) << c["name"] << ": " << r.err;
    auto got = nlohmann::json::parse(r.out);
    EXPECT_EQ(got["ids"], c["ids"]) << c["name"];
    EXPECT_EQ(got["text"], c["text"]) << c["name"];
    EXPECT_EQ(got["prompt_tokens"], c["prompt_ids"].size()) << c["name"];
    EXPECT_EQ(got["finish_reason"], c["ended_by_eos"].get<bool>() ? "eos" : "length") << c["name"];
    // The first token comes within the run (beam search knows its tokens only at the end).
    EXPECT_GT(got["first_token_seconds"].get<double>(), 0.0) << c["name"];
    EXPECT_LE(got["first_token_seconds"].get<double>(), got["seconds"].get<double>()) << c["name"];
  }
  // The eos case is the one that must end early (its generation_config.json says where); beam
  // search ends on eos at different lengths as its length penalty and early stopping say.
  EXPECT_LT(find_case("greedy_eos")["ids"].size(), 24u);
  EXPECT_NE(find_case("beam_false")["ids"].size(), find_case("beam_eos")["ids"].size());
  EXPECT_NE(find_case("beam_base")["ids"], find_case("greedy_base_1")["ids"]);
}

// Beam search with a stop string: a hypothesis that reaches it is finished, and the text ends
// before it.
TEST_F(Generate, BeamSearchStopsAtAStopString) {
  const auto& c = find_case("beam_base");
  const std::string text = c["text"];
  const std::string stop = text.substr(text.size() / 2, 3);
  auto args = args_of(c);
  for (auto s : {"--stop", stop.c_str(), "--json"}) args.push_back(s);
  auto r = testing::run_command(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = nlohmann::json::parse(r.out);
  EXPECT_EQ(got["finish_reason"], "stop");
  EXPECT_THAT(got["text"].get<std::string>(), Not(HasSubstr(stop)));
  EXPECT_LT(got["new_tokens"].get<size_t>(), 24u);
  // Not streamed: the whole text at the end, the same as --json's.
  args.pop_back();
  auto shown = testing::run_command(args);
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(shown.out, got["text"].get<std::string>() + "\n");
}

TEST_F(Generate, StreamedTextIsTheFinalText) {
  // Random weights and a byte-level vocabulary: the text is full of characters split across
  // tokens, which the stream holds back until they are whole.
  for (const char* name : {"greedy_adapter_0", "sample_base_defaults"}) {
    const auto& c = find_case(name);
    auto r = testing::run_command(args_of(c));
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.err;
    EXPECT_EQ(r.out, c["text"].get<std::string>() + "\n") << name;
    EXPECT_THAT(r.err, HasSubstr("24 new tokens")) << name;
  }
}

TEST_F(Generate, StopStringEndsTheText) {
  const auto& c = find_case("greedy_base_1");
  const std::string text = c["text"];
  // A piece of the continuation, past its first token: the text ends right before it.
  const std::string stop = text.substr(text.size() / 2, 4);
  const size_t at = text.find(stop);
  ASSERT_NE(at, std::string::npos);
  auto args = args_of(c);
  for (auto s : {"--stop", stop.c_str(), "--json"}) args.push_back(s);
  auto r = testing::run_command(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = nlohmann::json::parse(r.out);
  EXPECT_EQ(got["text"], text.substr(0, at));
  EXPECT_EQ(got["finish_reason"], "stop");
  EXPECT_LT(got["new_tokens"].get<size_t>(), 24u);
  // Streamed, the stop string is never shown either.
  args.pop_back();
  auto streamed = testing::run_command(args);
  ASSERT_EQ(streamed.exit_code, 0) << streamed.err;
  EXPECT_EQ(streamed.out, text.substr(0, at) + "\n");
}

TEST_F(Generate, SeedDecidesTheSample) {
  const auto& c = find_case("sample_adapter");
  auto args = args_of(c);
  args.push_back("--json");
  auto again = nlohmann::json::parse(testing::run_command(args).out);
  EXPECT_EQ(again["ids"], c["ids"]);
  args[args.size() - 2] = "8";  // --seed's value
  auto other = testing::run_command(args);
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_NE(nlohmann::json::parse(other.out)["ids"], c["ids"]);
}

TEST_F(Generate, WarpersAreTransformers) {
  auto file = safetensors::SafetensorsFile::open(oracle().dir() / "warp.safetensors");
  auto tensor = [&](const std::string& name) {
    for (const auto& info : file.header().tensors)
      if (info.name == name) return safetensors::tensor_view(file, info).clone();
    throw std::runtime_error("no tensor " + name);
  };
  const at::Tensor logits = tensor("logits");
  const auto& settings = expected_["warp_settings"];
  ASSERT_GE(settings.size(), 5u);
  ASSERT_GE(settings.size(), 11u);
  for (size_t i = 0; i < settings.size(); ++i) {
    SamplingOptions o;
    o.temperature = settings[i][0];
    o.top_k = settings[i][1];
    o.top_p = settings[i][2];
    o.min_p = settings[i][3];
    o.typical_p = settings[i][4];
    o.epsilon_cutoff = settings[i][5];
    o.eta_cutoff = settings[i][6];
    const int64_t keep = settings[i][7];
    at::Tensor want = tensor("warped_" + std::to_string(i));
    at::Tensor got = warp_logits(logits, o, keep);
    EXPECT_TRUE(at::equal(got.isinf(), want.isinf())) << "setting " << i << ": other tokens removed";
    EXPECT_TRUE(at::equal(got, want)) << "setting " << i;
    // One row at a time (as greedy and sampling call it), the same scores.
    EXPECT_TRUE(at::equal(warp_logits(logits[0], o, keep), want[0])) << "setting " << i << ", row 0";
    // Some tokens go, some stay: the case tests something.
    if (o.top_k > 0 || o.top_p < 1 || o.min_p > 0 || o.typical_p < 1 || o.epsilon_cutoff > 0 || o.eta_cutoff > 0) {
      EXPECT_TRUE(want.isinf().any().item<bool>()) << i;
    }
    // min_tokens_to_keep: never fewer tokens left than that in any row.
    EXPECT_TRUE((want.isfinite().sum(-1) >= keep).all().item<bool>()) << i;
  }
}

TEST_F(Generate, ChatRepliesAsTheGuanacoPrompt) {
  const auto& chat = expected_["chat"];
  std::string input;
  for (const auto& m : chat["messages"]) input += m.get<std::string>() + "\n";
  // A mistyped command gets no reply and leaves the conversation as it was.
  input += "/rest\n/reset\n" + chat["messages"][0].get<std::string>() + "\n";
  auto r = testing::run_command({bin_, "chat", "--model", (oracle().dir() / "model").string(), "--max-new-tokens", "24",
                                 "--device", "cpu"},
                                {}, {}, input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("unknown command /rest"));
  // After /reset the first message gets its first reply again.
  EXPECT_EQ(r.out, chat["stdout"].get<std::string>() + chat["first_reply_line"].get<std::string>());
  // --json: one line per message, the same replies; a message too long for the context gets an
  // empty reply (a string, like every reply).
  std::string too_long;
  for (int i = 0; i < 2000; ++i) too_long += "word ";
  auto j = testing::run_command({bin_, "chat", "--model", (oracle().dir() / "model").string(), "--max-new-tokens", "24",
                                 "--device", "cpu", "--json"},
                                {}, {}, input + too_long + "\n");
  ASSERT_EQ(j.exit_code, 0) << j.err;
  std::istringstream lines(j.out);
  std::string line, replies, last;
  int n = 0;
  for (; std::getline(lines, line); ++n) {
    replies += nlohmann::json::parse(line)["reply"].get<std::string>() + "\n";
    last = line;
  }
  EXPECT_EQ(n, 4);
  EXPECT_EQ(replies, chat["stdout"].get<std::string>() + chat["first_reply_line"].get<std::string>() + "\n");
  EXPECT_EQ(nlohmann::json::parse(last)["finish_reason"], "too_long");
}

// Without --model, what the config's train made: MODEL_NAME with the project's adapter.
TEST_F(Generate, ModelAndAdapterFromTheConfig) {
  const auto& c = find_case("greedy_adapter_1");
  testing::TempDir work;
  auto env = work.write("falcon.env", "MODEL_NAME=" + (oracle().dir() / "model").string() +
                                          "\nAUTOTRAIN_PROJECT_NAME=" + (oracle().dir() / "adapter").string() +
                                          "\nUSE_PEFT=True\n");
  auto r = testing::run_command({bin_, "generate", "-c", env.string(), "--prompt", c["prompt"], "--max-new-tokens", "24",
                                 "--device", "cpu", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["ids"], c["ids"]);
  // --adapter alone, run where there is no config: the base its adapter_config.json names (PEFT
  // wrote the model folder there).
  testing::TempDir no_config;
  auto by_adapter = testing::run_command({bin_, "generate", "--adapter", (oracle().dir() / "adapter").string(), "--prompt",
                                          c["prompt"], "--max-new-tokens", "24", "--device", "cpu", "--json"},
                                         {}, no_config.path());
  ASSERT_EQ(by_adapter.exit_code, 0) << by_adapter.err;
  EXPECT_EQ(nlohmann::json::parse(by_adapter.out)["ids"], c["ids"]);
  EXPECT_THAT(by_adapter.err, HasSubstr("base_model_name_or_path"));
  auto no_adapter = testing::run_command({bin_, "generate", "--adapter", work.path().string(), "--prompt", "hi"}, {},
                                         no_config.path());
  EXPECT_EQ(no_adapter.exit_code, 2);
  EXPECT_THAT(no_adapter.err, HasSubstr("no adapter_config.json there"));
  // A relative base, as train records MODEL_NAME=./runs/x, is looked for from here: said so.
  auto relative = work.write("rel/adapter_config.json", R"({"base_model_name_or_path": "./runs/base-x"})");
  auto moved = testing::run_command(
      {bin_, "generate", "--adapter", relative.parent_path().string(), "--prompt", "hi", "--device", "cpu"}, {},
      no_config.path());
  EXPECT_EQ(moved.exit_code, 2);
  EXPECT_THAT(moved.err, HasSubstr("relative to the folder train ran in"));
  // With a config, the config names the base (and 4-bit loading), the adapter given on top.
  auto with_config = testing::run_command({bin_, "generate", "-c", env.string(), "--adapter",
                                           (oracle().dir() / "adapter").string(), "--prompt", c["prompt"],
                                           "--max-new-tokens", "24", "--device", "cpu", "--json"});
  ASSERT_EQ(with_config.exit_code, 0) << with_config.err;
  EXPECT_EQ(nlohmann::json::parse(with_config.out)["ids"], c["ids"]);
  EXPECT_THAT(with_config.err, Not(HasSubstr("config is not read")));
  // A project that was not trained yet says so.
  auto untrained = work.write("untrained.env", "MODEL_NAME=" + (oracle().dir() / "model").string() +
                                                   "\nAUTOTRAIN_PROJECT_NAME=" + (work.path() / "nothing").string() + "\n");
  auto u = testing::run_command({bin_, "generate", "-c", untrained.string(), "--prompt", "hi", "--device", "cpu"});
  EXPECT_EQ(u.exit_code, 2);
  EXPECT_THAT(u.err, HasSubstr("run `autotrain train` first"));
}

// generation_config.json settings that change transformers' text and are not applied here are
// named; a broken value is an error naming the file; a prompt from stdin loses its final newline.
TEST_F(Generate, GenerationConfigSettingsAndStdinPrompt) {
  testing::TempDir work;
  const fs::path folder = work.path() / "m";
  fs::copy(oracle().dir() / "model", folder);
  const std::string prompt = find_case("greedy_base_1")["prompt"];
  auto with_config = [&](const std::string& json) {
    std::ofstream(folder / "generation_config.json") << json;
    return testing::run_command({bin_, "generate", "--model", folder.string(), "--prompt", prompt, "--device", "cpu",
                                 "--max-new-tokens", "2", "--json"});
  };
  auto typical = with_config(
      R"({"eos_token_id": 11, "exponential_decay_length_penalty": [5, 1.5], "num_return_sequences": 1, )"
      R"("typical_p": 0.5, "repetition_penalty": 1.3, "stop_strings": ["###"], "max_time": 2.5, "token_healing": false})");
  ASSERT_EQ(typical.exit_code, 0) << typical.err;
  EXPECT_THAT(typical.err, HasSubstr("exponential_decay_length_penalty=[5,1.5]"));
  EXPECT_THAT(typical.err, HasSubstr("stop_strings=[\"###\"]"));
  EXPECT_THAT(typical.err, HasSubstr("max_time=2.5"));
  EXPECT_THAT(typical.err, HasSubstr("are not applied here"));
  EXPECT_THAT(typical.err, ::testing::Not(HasSubstr("token_healing")));  // its neutral value
  EXPECT_THAT(typical.err, ::testing::Not(HasSubstr("num_return_sequences")));  // its neutral value
  EXPECT_THAT(typical.err, ::testing::Not(HasSubstr("repetition_penalty")));    // applied
  EXPECT_THAT(typical.err, ::testing::Not(HasSubstr("typical_p")));             // applied when sampling
  // The file's repetition_penalty is the default, as the option gives it: the same tokens.
  auto by_option = testing::run_command({bin_, "generate", "--model", (oracle().dir() / "model").string(), "--prompt",
                                         prompt, "--device", "cpu", "--max-new-tokens", "2", "--json",
                                         "--repetition-penalty", "1.3"});
  ASSERT_EQ(by_option.exit_code, 0) << by_option.err;
  EXPECT_EQ(nlohmann::json::parse(typical.out)["ids"], nlohmann::json::parse(by_option.out)["ids"]);
  // Every token suppressed at the start: nothing to choose from is an error, not token 0.
  const auto vocab = nlohmann::json::parse(testing::read_file(folder / "config.json"))["vocab_size"].get<int64_t>();
  nlohmann::json all_ids = nlohmann::json::array();
  for (int64_t id = 0; id < vocab; ++id) all_ids.push_back(id);
  auto nothing = with_config(nlohmann::json{{"begin_suppress_tokens", all_ids}}.dump());
  EXPECT_EQ(nothing.exit_code, 2) << nothing.err;
  EXPECT_THAT(nothing.err, HasSubstr("no token is allowed at new token 1"));
  auto bad_penalty = with_config(R"({"repetition_penalty": 0})");
  EXPECT_EQ(bad_penalty.exit_code, 1);
  EXPECT_THAT(bad_penalty.err, HasSubstr("repetition_penalty is 0, not a number above 0"));
  // Token ids past the vocabulary, and values transformers refuses, name the file and the key.
  for (auto [json, says] : std::initializer_list<std::pair<const char*, const char*>>{
           {R"({"bad_words_ids": [[1, 99999]]})", "bad_words_ids is [[1,99999]], not made of token ids"},
           {R"({"sequence_bias": [[[3], "high"]]})", "sequence_bias is [[[3],\"high\"]], not a list of [[token ids], bias]"},
           {R"({"suppress_tokens": 5})", "suppress_tokens is 5, not a list of token ids"},
           {R"({"early_stopping": "soon"})", "early_stopping is \"soon\", not true, false or \"never\""},
           {R"({"num_beams": 0})", "num_beams is 0, not a whole number above 0"},
           {R"({"typical_p": 1.5})", "typical_p is 1.5"}}) {
    auto r = with_config(json);
    EXPECT_EQ(r.exit_code, 1) << json;
    EXPECT_THAT(r.err, HasSubstr(says)) << json;
    EXPECT_THAT(r.err, HasSubstr("generation_config.json")) << json;
  }
  // Its max_new_tokens is the budget when --max-new-tokens is not given.
  std::ofstream(folder / "generation_config.json") << R"({"eos_token_id": 11, "max_new_tokens": 3})";
  auto budget = testing::run_command(
      {bin_, "generate", "--model", folder.string(), "--prompt", prompt, "--device", "cpu", "--json"});
  ASSERT_EQ(budget.exit_code, 0) << budget.err;
  EXPECT_EQ(nlohmann::json::parse(budget.out)["new_tokens"], 3);
  // ... else max_length, which counts the prompt.
  std::ofstream(folder / "generation_config.json")
      << R"({"eos_token_id": 11, "max_length": )" << find_case("greedy_base_1")["prompt_ids"].size() + 4 << "}";
  auto total = testing::run_command(
      {bin_, "generate", "--model", folder.string(), "--prompt", prompt, "--device", "cpu", "--json"});
  ASSERT_EQ(total.exit_code, 0) << total.err;
  EXPECT_EQ(nlohmann::json::parse(total.out)["new_tokens"], 4);
  auto broken = with_config(R"({"do_sample": "yes"})");
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_THAT(broken.err, HasSubstr("generation_config.json: do_sample is \"yes\", not true or false"));
  fs::remove(folder / "generation_config.json");

  auto piped = testing::run_command({bin_, "generate", "--model", folder.string(), "--prompt", "-", "--device", "cpu",
                                     "--max-new-tokens", "3", "--json"},
                                    {}, {}, prompt + "\n");
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  const auto& c = find_case("greedy_base_1");
  EXPECT_EQ(nlohmann::json::parse(piped.out)["prompt_tokens"], c["prompt_ids"].size());
}

// --jsonl: every prompt of a file, one --json line each (with the line's "id"), the tokens of
// transformers' generate() for each; prompt n samples with --seed + n.
TEST_F(Generate, JsonlContinuesEveryPrompt) {
  testing::TempDir work;
  const auto& first = find_case("greedy_base_0");
  const auto& second = find_case("greedy_base_1");
  auto file = work.write("prompts.jsonl", nlohmann::json({{"id", "q1"}, {"prompt", first["prompt"]}}).dump() + "\n\n" +
                                              nlohmann::json({{"prompt", second["prompt"]}}).dump() + "\r\n");
  auto r = testing::run_command({bin_, "generate", "--model", (oracle().dir() / "model").string(), "--jsonl",
                                 file.string(), "--max-new-tokens", "24", "--device", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<nlohmann::json> got;
  while (std::getline(lines, line)) got.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(got.size(), 2u) << r.out;
  EXPECT_EQ(got[0]["id"], "q1");
  EXPECT_EQ(got[0]["ids"], first["ids"]);
  EXPECT_EQ(got[0]["text"], first["text"]);
  EXPECT_FALSE(got[1].contains("id"));
  EXPECT_EQ(got[1]["ids"], second["ids"]);
  EXPECT_THAT(r.err, HasSubstr("2 prompts, 48 new tokens"));

  // Sampled: the first prompt draws with --seed, the second with --seed + 1.
  const auto& sampled = find_case("sample_base_defaults");
  auto twice = work.write("twice.jsonl", nlohmann::json({{"prompt", sampled["prompt"]}}).dump() + "\n" +
                                             nlohmann::json({{"prompt", sampled["prompt"]}}).dump() + "\n");
  auto args = args_of(sampled);
  const auto seed_at = std::find(args.begin(), args.end(), "--seed") + 1;
  const auto prompt_at = std::find(args.begin(), args.end(), "--prompt");
  auto single = args;
  *(single.begin() + (seed_at - args.begin())) = std::to_string(sampled["sampling"]["seed"].get<int>() + 1);
  single.push_back("--json");
  args.erase(prompt_at, prompt_at + 2);
  args.push_back("--jsonl");
  args.push_back(twice.string());
  auto s = testing::run_command(args);
  ASSERT_EQ(s.exit_code, 0) << s.err;
  std::istringstream sampled_lines(s.out);
  std::getline(sampled_lines, line);
  EXPECT_EQ(nlohmann::json::parse(line)["ids"], sampled["ids"]);
  std::getline(sampled_lines, line);
  auto alone = testing::run_command(single);
  ASSERT_EQ(alone.exit_code, 0) << alone.err;
  EXPECT_EQ(nlohmann::json::parse(line)["ids"], nlohmann::json::parse(alone.out)["ids"]);
  EXPECT_NE(nlohmann::json::parse(line)["ids"], sampled["ids"]);

  // A broken line is found before anything is generated.
  auto broken = work.write("broken.jsonl", nlohmann::json({{"prompt", first["prompt"]}}).dump() + "\n{\"text\": 1}\n");
  auto b = testing::run_command({bin_, "generate", "--model", (oracle().dir() / "model").string(), "--jsonl",
                                 broken.string(), "--device", "cpu"});
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_THAT(b.err, HasSubstr(broken.string() + ":2: expected an object with a string \"prompt\""));
  EXPECT_TRUE(b.out.empty()) << b.out;
}

TEST_F(Generate, MistakesAreUsageErrors) {
  const std::string model = (oracle().dir() / "model").string();
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--prompt", ""}, "prompt is empty"},
      {{"--prompt", "hi", "--top-p", "0"}, "--top-p"},
      {{"--prompt", "hi", "--temperature", "-1"}, "--temperature"},
      {{"--prompt", "hi", "--max-new-tokens", "0"}, "--max-new-tokens"},
      {{"--prompt", "hi", "--adapter", model}, "adapter_config.json"},
      {{"--prompt", std::string(3000, 'x') + " human"}, "max_position_embeddings"},
      {{"--prompt", "hi", "--stop", ""}, "--stop"},
      {{"--prompt", "hi", "--num-beams", "0"}, "--num-beams"},
      {{}, "needs --prompt TEXT"},
      {{"--prompt", "hi", "--jsonl", "-"}, "--prompt excludes --jsonl"},
      {{"--prompt", "hi", "--min-p", "2"}, "--min-p"},
      {{"--prompt", "hi", "--typical-p", "0"}, "--typical-p"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {bin_, "generate", "--model", model, "--device", "cpu"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = testing::run_command(args);
    EXPECT_EQ(r.exit_code, 2) << c.says << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.says));
    EXPECT_TRUE(r.out.empty()) << c.says;
  }
}

}  // namespace
}  // namespace autotrain::model
