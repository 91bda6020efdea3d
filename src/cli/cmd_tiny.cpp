// autotrain tiny [-c F] [--force]: writes the embedded tiny default, the model folder at
// MODEL_NAME and the dataset at DATA_PATH of the config (configs/tiny.env), deterministically.
#include <cctype>
#include <filesystem>

#include <fmt/format.h>

#include "autotrain/train/tiny_assets.h"
#include "common.h"

namespace autotrain::cli {

namespace {

// "org/name" that is no existing path: a Hugging Face id (falcon.env's tiiuae/falcon-7b), which
// `tiny` must not turn into a toy folder ./tiiuae/falcon-7b. ./x/y and /x/y are folders.
bool looks_like_hub_id(const std::string& s) {
  std::error_code ec;
  if (s.empty() || s.front() == '.' || s.front() == '/' || std::filesystem::exists(s, ec)) return false;
  const size_t slash = s.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == s.size() || s.find('/', slash + 1) != std::string::npos)
    return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/')) return false;
  return true;
}

}  // namespace

Subcommand add_tiny_command(CLI::App& app, GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand(
      "tiny", "Write the tiny Falcon model and dataset of the embedded default at MODEL_NAME and DATA_PATH");
  auto force = std::make_shared<bool>(false);
  sub->add_flag("--force", *force, "Rewrite them even when they exist");
  return {sub, [&g, force] {
            config::Config cfg = load_config(g, /*required=*/true);
            const std::string model = cfg.get_string("MODEL_NAME"), data = cfg.get_string("DATA_PATH");
            if (model.empty() || data.empty()) {
              fmt::print(stderr, "error: MODEL_NAME and DATA_PATH must name the folders to write (see configs/tiny.env)\n");
              return static_cast<int>(kExitUsage);
            }
            // Every refusal is found before anything is written.
            struct Target {
              const char* key;
              const std::string& value;
              const char* what;     // for messages
              const char* example;  // a folder to suggest
              const std::vector<std::string>& files;
              bool write = false;
            };
            Target targets[] = {{"MODEL_NAME", model, "model", "./runs/tiny-falcon", train::tiny_model_files()},
                                {"DATA_PATH", data, "dataset", "./runs/tiny-data", train::tiny_dataset_files()}};
            int problems = 0;
            for (auto& t : targets) {
              if (looks_like_hub_id(t.value)) {
                fmt::print(stderr,
                           "error: {}={} looks like a Hugging Face id, not a folder: `tiny` writes a toy {} and will not "
                           "create ./{} in its place. Pass --set {}=<folder> (e.g. --set {}={}), or start the value "
                           "with ./ to mean that folder\n",
                           t.key, t.value, t.what, t.value, t.key, t.key, t.example);
                ++problems;
                continue;
              }
              try {
                t.write = train::tiny_folder_needs_writing(t.value, t.files, *force);
              } catch (const train::TinyAssetsConflict& e) {
                fmt::print(stderr, "error: {}={}: {}\n", t.key, t.value, e.what());
                ++problems;
              }
            }
            if (problems) return static_cast<int>(kExitUsage);
            const auto seed = static_cast<uint64_t>(cfg.get_int("SEED"));
            if (targets[0].write) train::write_tiny_model(model, seed, *force);
            if (targets[1].write) train::write_tiny_dataset(data, seed, *force);
            fmt::print("tiny model: {}{}\ntiny dataset: {} (train.jsonl, test.jsonl{})\n", model,
                       targets[0].write ? "" : " (already there, kept)", data,
                       targets[1].write ? "" : "; already there, kept");
            return static_cast<int>(kExitOk);
          }};
}

}  // namespace autotrain::cli
