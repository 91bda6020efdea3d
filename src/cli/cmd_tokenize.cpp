// autotrain tokenize --tokenizer PATH (--text S | --jsonl F) [--json] [--no-special]:
// token ids of a text (count tokens, debug a prompt, check parity from outside).
#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>

#include "autotrain/model/falcon_config.h"
#include "autotrain/model/model_dir.h"
#include "autotrain/tokenizer/tokenizer.h"
#include "common.h"

namespace autotrain::cli {

namespace {

struct TokenizeOptions {
  std::string tokenizer;
  std::optional<std::string> text;
  std::optional<std::string> jsonl;
  bool json = false;
  bool no_special = false;
};

// "Ġworld" is unreadable; show the token as the text it stands for, quoted like JSON.
std::string shown(const tokenizer::Tokenizer& tok, tokenizer::TokenId id) {
  std::string text = tok.decode(std::span<const tokenizer::TokenId>(&id, 1), false);
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void print_human(const tokenizer::Tokenizer& tok, const std::vector<tokenizer::TokenId>& ids) {
  fmt::print("{} tokens\n", ids.size());
  for (auto id : ids) {
    std::string piece = tok.id_to_token(id).value_or("?");
    fmt::print("{:>8}  {:<24} {}\n", id,
               nlohmann::json(piece).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), shown(tok, id));
  }
}

void print_json(const std::vector<tokenizer::TokenId>& ids) {
  fmt::print("{}\n", nlohmann::json{{"ids", ids}}.dump());
}

}  // namespace

Subcommand add_tokenize_command(CLI::App& app, GlobalOptions&) {
  CLI::App* sub = app.add_subcommand("tokenize", "Token ids of a text with a model's tokenizer");
  auto o = std::make_shared<TokenizeOptions>();
  sub->add_option("--tokenizer", o->tokenizer,
                  "Model folder, tokenizer.json, tokenizer.model, or a model id (org/name) in the Hugging Face cache")
      ->required();
  auto* text = sub->add_option("--text", o->text, "The text to tokenize");
  auto* jsonl = sub->add_option("--jsonl", o->jsonl, "File of {\"text\": ...} lines ('-' = stdin)");
  text->excludes(jsonl);
  sub->add_flag("--json", o->json, "One {\"ids\": [...]} line per input");
  sub->add_flag("--no-special", o->no_special, "Do not add the post-processor's special tokens (BOS/EOS)");
  return {sub, [o]() -> int {
            if (!o->text && !o->jsonl) {
              fmt::print(stderr, "error: tokenize needs --text S or --jsonl FILE\n");
              return kExitUsage;
            }
            // A missing, unreadable or unsupported tokenizer is bad input (exit 2, DESIGN.md D8).
            // A path that is not there may be a hub id (org/name, or a bare name such as gpt2):
            // resolved as --model is (the same
            // places, in the same order), and when it is neither, the error lists where it looked.
            // Anything else that is missing (an absolute or ./ path, a bare file name) is just
            // that: the tokenizer loader says so.
            std::filesystem::path where = o->tokenizer;
            std::error_code ec;
            const std::string& t = o->tokenizer;
            const bool hub_id_like = !t.empty() && t.front() != '/' && t.front() != '.' &&
                                     std::count(t.begin(), t.end(), '/') <= 1 && !t.ends_with(".json") &&
                                     !t.ends_with(".model");
            if (hub_id_like && !std::filesystem::exists(where, ec)) {
              try {
                where = model::resolve_model_dir(o->tokenizer, model::process_env,
                                                 {"tokenizer.json", "tokenizer.model"})
                            .path;
              } catch (const model::ModelError& e) {
                fmt::print(stderr,
                           "error: --tokenizer {}: {}\n(--tokenizer takes a model folder, a tokenizer.json, a "
                           "SentencePiece .model, or a model id in the Hugging Face cache)\n",
                           o->tokenizer, e.what());
                return kExitUsage;
              }
            }
            std::unique_ptr<tokenizer::Tokenizer> tok;
            try {
              tok = tokenizer::load_tokenizer(where);
            } catch (const tokenizer::TokenizerError& e) {
              fmt::print(stderr, "error: {}\n", e.what());
              // A path that names nothing (or a folder without tokenizer files) is a command-line
              // mistake; files that are there but do not load are broken model files, exit 1 as in
              // every command.
              const bool folder_without_files = std::filesystem::is_directory(where, ec) &&
                                                !std::filesystem::exists(where / "tokenizer.json", ec) &&
                                                !std::filesystem::exists(where / "tokenizer.model", ec);
              return std::filesystem::exists(where, ec) && !folder_without_files ? static_cast<int>(kExitRuntime)
                                                                                  : static_cast<int>(kExitUsage);
            }
            bool add_special = !o->no_special;
            if (o->text) {
              auto ids = tok->encode(*o->text, add_special);
              if (o->json)
                print_json(ids);
              else
                print_human(*tok, ids);
              return static_cast<int>(kExitOk);
            }
            std::vector<std::string> texts;
            try {
              for (const auto& l : read_json_lines(*o->jsonl, "{\"text\": ...}")) {
                if (!l.value.is_object() || !l.value.contains("text") || !l.value["text"].is_string()) {
                  fmt::print(stderr, "error: {}:{}: expected an object with a string \"text\", e.g. {{\"text\": \"Hello\"}}\n",
                             *o->jsonl, l.lineno);
                  return kExitUsage;
                }
                texts.push_back(l.value["text"].get<std::string>());
              }
            } catch (const std::invalid_argument& e) {
              fmt::print(stderr, "error: {}\n", e.what());
              return kExitUsage;
            }
            // Everything read first, then encoded on all cores; output keeps the input order.
            auto all = tok->encode_batch(texts, add_special);
            for (const auto& ids : all) {
              if (o->json)
                print_json(ids);
              else
                print_human(*tok, ids);
            }
            return static_cast<int>(kExitOk);
          }};
}

}  // namespace autotrain::cli
