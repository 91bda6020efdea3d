// prepare_data: DATA_PATH -> DATA_FILE + token cache (see autotrain/data/prepare.h). The steps
// live in their own files (source, blocks, token_cache, manifest); this file decides what runs.
#include "autotrain/data/prepare.h"

#include <algorithm>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "autotrain/data/blocks.h"
#include "autotrain/data/csv_writer.h"
#include "autotrain/data/readers.h"
#include "autotrain/data/sha256.h"
#include "autotrain/data/source.h"
#include "autotrain/data/token_cache.h"
#include "autotrain/io/atomic_file.h"
#include "autotrain/io/json_error.h"
#include "autotrain/io/json_text.h"
#include "autotrain/io/temp_paths.h"
#include "autotrain/model/falcon_config.h"
#include "autotrain/model/model_dir.h"
#include "autotrain/tokenizer/tokenizer.h"
#include "manifest.h"

namespace autotrain::data {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// The keys that decide the blocks, read once.
struct Settings {
  std::string trainer;
  std::string text_column;
  std::string train_split;
  std::string valid_split;
  double valid_fraction = 0;
  uint64_t seed = 0;
  bool add_eos = false;
  bool completions_only = false;
  std::string response_template;
  std::string instruction_template;
  std::string text_sample_by;
  int64_t model_max_length = 0;
  int64_t block_size = 0;  // effective
};

// DATA_FILE is replaced by `data`: refuse a path that holds something else. Allowed: nothing
// there yet, or a CSV whose header is the text column (what `data` or dataload.py wrote).
// Refused: a folder, a file of the model folder, a file of the validation split, and any other
// existing file (the user's test.jsonl, a tokenizer.json) -- overwriting it would lose it.
void check_data_file_target(const fs::path& data_file, const std::string& column, const fs::path& model_dir,
                            const DatasetSource& source, const std::string& valid_split,
                            const fs::path& data_file_record) {
  const std::string path_text = data_file.string();
  auto refuse = [&](const std::string& why) {
    throw DataError(fmt::format("DATA_FILE {}: {}; refusing to overwrite it. Set DATA_FILE to another path (the "
                                "tutorial's is ./train.csv)",
                                path_text, why));
  };
  if (!path_text.empty() && path_text.back() == '/') refuse("names a folder (it ends with '/'); DATA_FILE is a file");
  if (format_of(data_file) != data_file.extension().string())
    throw DataError(fmt::format("DATA_FILE {}: has a compression suffix, but DATA_FILE is written as plain CSV, as "
                                "dataload.py wrote it; name it .csv (the tutorial's is ./train.csv)",
                                path_text));
  std::error_code ec;
  const fs::file_status st = fs::status(data_file, ec);
  if (!fs::exists(st)) return;
  if (fs::is_directory(st)) refuse("is a folder");
  // The token cache's own files (manifest.json, the block files) are written by the same run.
  {
    std::error_code a, b;
    const fs::path folder = fs::weakly_canonical(data_file.parent_path().empty() ? "." : data_file.parent_path(), a);
    const fs::path cache = fs::weakly_canonical(data_file_record.parent_path(), b);
    if (!a && !b && !folder.empty() && folder == cache) refuse("is a file of the token cache");
  }
  // /dev/null, a FIFO, a socket: renaming over one would replace it (for everyone, with
  // /dev/null), and opening a FIFO to check its header would wait for a writer.
  if (!fs::is_regular_file(st)) refuse("is not a regular file (a device, FIFO or socket)");
  // Any data file of DATA_PATH is the user's data, whether or not this run reads it.
  if (const auto split = source.split_of(data_file))
    refuse(*split == valid_split ? std::string("is a file of the validation split")
                                 : fmt::format("is a data file of DATA_PATH {} (its '{}' split)", source.root.string(),
                                               *split));
  const fs::path canonical_model = fs::weakly_canonical(model_dir, ec);
  const fs::path canonical_file = fs::weakly_canonical(data_file, ec);
  if (!canonical_model.empty() && canonical_file.parent_path() == canonical_model) refuse("is a file of the model folder");
  // What `data` last wrote there (this project's or another's), whatever its header.
  if (written_by_data(data_file)) return;
  try {
    const auto record = nlohmann::json::parse(read_file_bytes(data_file_record));
    if (fs::equivalent(fs::path(record.at("path").get<std::string>()), data_file, ec) &&
        record.at("sha256").get<std::string>() == file_sha256(data_file))
      return;
  } catch (const std::exception&) {
    // no record, or another file's: the header decides
  }
  // A CSV of the one column `data` writes (or dataload.py wrote for a text-only dataset such as
  // guanaco). A file with more columns is someone's data: writing ours over it would lose them.
  std::ifstream in(data_file, std::ios::binary);
  std::string first;
  std::getline(in, first);
  if (first.rfind("\xEF\xBB\xBF", 0) == 0) first.erase(0, 3);
  if (!first.empty() && first.back() == '\r') first.pop_back();
  if (first.empty() && in.peek() == std::ifstream::traits_type::eof()) return;  // an empty file
  std::vector<std::string> names;
  for (size_t start = 0;;) {
    const size_t comma = first.find(',', start);
    std::string name = first.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
    names.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (names.size() != 1 || (names.front() != column && names.front() != "text"))
    refuse(fmt::format("exists and is not a data file that `autotrain data` (or dataload.py) wrote: its first line "
                       "is not the one-column CSV header \"{}\" but \"{}\"",
                       column, first.size() > 80 ? first.substr(0, 80) + "..." : first));
}

int64_t max_positions(const fs::path& model_dir) {
  fs::path file = model_dir / "config.json";
  nlohmann::json j;
  try {
    j = io::parse_json_text(read_file_bytes(file));
  } catch (const nlohmann::json::exception& e) {
    // Model files that do not load are a runtime failure (exit 1), as in eval and train's model
    // loading; DataError (exit 2) is for the config and the data.
    throw model::ModelError(fmt::format("{}: not valid JSON: {}", file.string(), io::json_error_text(e)));
  } catch (const DataError& e) {
    throw model::ModelError(e.what());  // unreadable
  }
  // Falcon's configs without the key use FalconConfig's default, 2048. Blocks are cut to it, so
  // anything but a positive integer would make no block at all (0 divided the token count).
  if (!j.is_object() || !j.contains("max_position_embeddings") || j["max_position_embeddings"].is_null()) return 2048;
  const auto& v = j["max_position_embeddings"];
  if (!v.is_number_integer() || v.get<int64_t>() <= 0)
    throw model::ModelError(fmt::format("{}: \"max_position_embeddings\" must be a positive integer, got {}; fix "
                                        "config.json",
                                        file.string(), v.dump()));
  return v.get<int64_t>();
}

std::string thousands(int64_t n) {
  std::string s = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string describe(const SplitStats& s, int64_t block_size) {
  std::string line = fmt::format("{}: {} row{}", s.split, thousands(s.rows), s.rows == 1 ? "" : "s");
  if (s.skipped) line += fmt::format(" ({} skipped: empty text)", thousands(s.skipped));
  line += fmt::format(", {} tokens -> {} block{} of {} ({} token{} dropped)", thousands(s.tokens), thousands(s.blocks),
                      s.blocks == 1 ? "" : "s", block_size, thousands(s.dropped), s.dropped == 1 ? "" : "s");
  if (s.without_template)
    line += fmt::format("; {} examples without the response template, fully masked", thousands(s.without_template));
  if (s.unscored_blocks)
    line += fmt::format("; {} block{} with no token to learn from (prompt tokens only)", thousands(s.unscored_blocks),
                        s.unscored_blocks == 1 ? "" : "s");
  return line;
}

ordered_json stats_json(const SplitStats& s) {
  return {{"split", s.split},       {"files", s.files},   {"rows", s.rows},
          {"skipped", s.skipped},   {"without_template", s.without_template},
          {"tokens", s.tokens},     {"blocks", s.blocks}, {"dropped", s.dropped},
          {"unscored_blocks", s.unscored_blocks}};
}

SplitStats stats_from(const ordered_json& j) {
  SplitStats s;
  s.split = j.value("split", "");
  s.files = j.value("files", std::vector<std::string>{});
  s.rows = j.value("rows", int64_t{0});
  s.skipped = j.value("skipped", int64_t{0});
  s.without_template = j.value("without_template", int64_t{0});
  s.unscored_blocks = j.value("unscored_blocks", int64_t{0});
  s.tokens = j.value("tokens", int64_t{0});
  s.blocks = j.value("blocks", int64_t{0});
  s.dropped = j.value("dropped", int64_t{0});
  return s;
}

// The ids of the response template as they can appear inside an example: alone, and after a
// newline (BPE merges can differ at the start of a line); see mask_prompts.
std::vector<Ids> template_spellings(const tokenizer::Tokenizer& tok, const std::string& tmpl) {
  std::vector<Ids> out{tok.encode(tmpl, false)};
  Ids nl = tok.encode("\n", false);
  Ids with_nl = tok.encode("\n" + tmpl, false);
  if (with_nl.size() > nl.size() && std::equal(nl.begin(), nl.end(), with_nl.begin())) {
    Ids tail(with_nl.begin() + static_cast<std::ptrdiff_t>(nl.size()), with_nl.end());
    if (tail != out.front()) out.push_back(std::move(tail));
  }
  return out;
}

// Tokenizes and blocks one split's texts. `empty` marks skipped rows.
Blocks build_split(const Settings& s, const tokenizer::Tokenizer& tok, const SplitTexts& texts, SplitStats& stats) {
  std::vector<std::string> inputs;
  std::vector<size_t> chars;
  auto eos = tok.special_ids().eos;
  std::string eos_text;
  if ((s.trainer == "sft" || s.add_eos) && !eos)
    throw DataError(fmt::format("{} needs the tokenizer's EOS token, and {} defines none (tokenizer_config.json "
                                "eos_token)",
                                s.trainer == "sft" ? "TRAINER=sft" : "ADD_EOS_TOKEN=True", tok.describe()));
  if (eos) eos_text = tok.id_to_token(*eos).value_or("");
  for (size_t i = 0; i < texts.texts.size(); ++i) {
    if (s.trainer == "sft") {
      // trl's packing has no use for empty rows: they are skipped entirely.
      if (texts.empty[i]) continue;
      inputs.push_back(texts.texts[i]);
      chars.push_back(count_code_points(texts.texts[i]));
    } else {
      // AutoTrain fills empty cells with "" and keeps the row (its place decides the shard and
      // batch boundaries); it appends EOS as text, so we do too.
      inputs.push_back(s.add_eos ? texts.texts[i] + eos_text : texts.texts[i]);
    }
  }
  std::vector<Ids> ids = tok.encode_batch(inputs, /*add_special_tokens=*/true);
  std::vector<Ids> labels;
  if (s.completions_only) {
    std::vector<Ids> instructions;
    if (!s.instruction_template.empty()) instructions = template_spellings(tok, s.instruction_template);
    Masked m = mask_prompts(ids, template_spellings(tok, s.response_template), instructions);
    labels = std::move(m.labels);
    stats.without_template = static_cast<int64_t>(m.without_template);
  }
  Blocks b = s.trainer == "sft" ? pack_constant_length(ids, labels, chars, *eos, s.block_size)
                                : group_texts(ids, labels, s.block_size);
  stats.tokens = b.tokens;
  stats.blocks = b.count;
  stats.dropped = b.dropped;
  return b;
}

// A split without a single text: nothing to tokenize, with or without the model.
void require_text(const Settings& s, const SplitStats& st, const std::string& name) {
  if (st.rows == st.skipped)
    throw DataError(fmt::format(
        "the {} split has no text: {} ({}); {}", name,
        st.rows == 0 ? std::string("no rows") : fmt::format("all {} rows have an empty or null \"{}\"", st.rows, s.text_column),
        fmt::join(st.files, ", "),
        st.rows == 0 ? "check DATA_PATH and the split's file" : "check TEXT_COLUMN and the file's contents"));
}

[[noreturn]] void too_few_tokens(const Settings& s, const SplitStats& st, const Blocks& b, const std::string& name) {
  // Nothing to tokenize: a smaller BLOCK_SIZE would not help, so do not suggest it.
  require_text(s, st, name);
  std::string where = s.trainer == "sft" ? "" : " (TRAINER=default cuts every 1000-row batch of each of 4 shards on its own)";
  // A block needs 2 tokens (one predicts the other): below that, only more data helps.
  // A validation split too small for one block is fixed there; a smaller BLOCK_SIZE would change
  // the whole run for it.
  const std::string fix =
      name == "validation"
          ? (s.valid_fraction > 0 ? fmt::format("Raise VALID_FRACTION (it is {}) so that more rows are held out, or set "
                                                "it to 0 to train without evaluation",
                                                s.valid_fraction)
                                  : std::string("Add rows to the validation split's file, or set VALID_SPLIT= (empty) "
                                                "to train without evaluation"))
      : b.largest_group >= 2 ? fmt::format("Lower BLOCK_SIZE (e.g. --set BLOCK_SIZE={}) or add data", b.largest_group)
                             : std::string("Add data: a block needs at least 2 tokens");
  throw DataError(fmt::format("the {} split gives no block of BLOCK_SIZE={} tokens: {} row{}, {} token{} in all, at "
                              "most {} in one group{}. {}",
                              name, s.block_size, st.rows, st.rows == 1 ? "" : "s", st.tokens,
                              st.tokens == 1 ? "" : "s", b.largest_group, where, fix));
}

std::vector<std::string> file_names(const SplitFiles& f) {
  std::vector<std::string> out;
  for (const auto& p : f.files) out.push_back(p.string());
  return out;
}

// Completions-only masks can leave blocks without a label (prompt tokens only), or every block (a
// RESPONSE_TEMPLATE that no example contains): training would "succeed" with a loss of 0 and
// change nothing, an eval would be 0/0. Counts the former into `stats`, refuses the latter. A
// block's first label is never predicted (the loss shifts by one).
void count_unscored_blocks(const Settings& s, SplitStats& stats, const Blocks& b, const char* name) {
  stats.unscored_blocks = 0;
  for (int64_t block = 0; block < b.count; ++block) {
    bool scored = false;
    for (int64_t i = 1; i < b.block_size && !scored; ++i)
      scored = b.labels[static_cast<size_t>(block * b.block_size + i)] != kIgnoreIndex;
    stats.unscored_blocks += scored ? 0 : 1;
  }
  if (stats.unscored_blocks < b.count) return;
  throw DataError(fmt::format("the {} split has no token to learn from: the completions-only mask hides every label "
                              "({} of its {} examples do not contain RESPONSE_TEMPLATE '{}'{}). Check the template's "
                              "spelling against the data, or set TRAIN_ON_COMPLETIONS_ONLY=False",
                              name, thousands(stats.without_template), thousands(stats.rows - stats.skipped),
                              s.response_template,
                              s.instruction_template.empty()
                                  ? std::string()
                                  : fmt::format(" or INSTRUCTION_TEMPLATE '{}'", s.instruction_template)));
}

}  // namespace

// The tokenizer's limit as AutoTrain 0.6.44 read it: tokenizer_config.json's model_max_length,
// replaced by MODEL_MAX_LENGTH when it is above 2048 or missing (transformers then reports a
// huge number). Falcon-7B's is 2048.
static int64_t tokenizer_max_length(const fs::path& model_dir, int64_t model_max_length_key) {
  const fs::path file = model_dir / "tokenizer_config.json";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return model_max_length_key;
  nlohmann::json j;
  try {
    j = io::parse_json_text(read_file_bytes(file));
  } catch (const std::exception& e) {
    throw model::ModelError(fmt::format("{}: not valid JSON: {}", file.string(), e.what()));
  }
  if (!j.is_object() || !j.contains("model_max_length") || !j["model_max_length"].is_number()) return model_max_length_key;
  const double v = j["model_max_length"].get<double>();
  if (!(v >= 1) || v > 2048) return model_max_length_key;
  return static_cast<int64_t>(v);
}

int64_t effective_block_size(const config::Config& cfg, const fs::path& model_dir, std::string* warning) {
  const int64_t max_pos = max_positions(model_dir);
  const int64_t tok_max = tokenizer_max_length(model_dir, cfg.get_int("MODEL_MAX_LENGTH"));
  const int64_t requested = cfg.get_int("BLOCK_SIZE");
  std::vector<std::string> said;
  // AutoTrain 0.6.44: -1 is min(tokenizer limit, 1024); a larger BLOCK_SIZE is cut to the
  // tokenizer's limit with a warning.
  int64_t size = requested == -1 ? std::min<int64_t>(tok_max, 1024) : requested;
  if (requested != -1 && size > tok_max) {
    said.push_back(fmt::format("BLOCK_SIZE={} is larger than the tokenizer's model_max_length ({}); using {}, as "
                               "AutoTrain did",
                               requested, tok_max, tok_max));
    size = tok_max;
  }
  // And never past the positions the model was built for.
  if (size > max_pos) {
    said.push_back(requested == -1
                       ? fmt::format("BLOCK_SIZE=-1 means {} tokens here (the tokenizer's limit, at most 1024), more "
                                     "than the model's max_position_embeddings ({}); using {}",
                                     size, max_pos, max_pos)
                       : fmt::format("BLOCK_SIZE={} is larger than the model's max_position_embeddings ({}); using {}",
                                     requested, max_pos, max_pos));
    size = max_pos;
  }
  if (warning) *warning = fmt::format("{}", fmt::join(said, "; "));
  return size;
}

PreparedData prepare_data(const config::Config& cfg, const PrepareOptions& options) {
  PreparedData out;
  Settings s;
  s.trainer = cfg.get_string("TRAINER");
  s.text_column = cfg.get_string("TEXT_COLUMN");
  s.train_split = cfg.get_string("TRAIN_SPLIT");
  s.valid_split = cfg.get_string("VALID_SPLIT");
  s.valid_fraction = cfg.get_float("VALID_FRACTION");
  s.seed = static_cast<uint64_t>(cfg.get_int("SEED"));
  s.add_eos = cfg.get_bool("ADD_EOS_TOKEN");
  s.response_template = cfg.get_string("RESPONSE_TEMPLATE");
  // RESPONSE_TEMPLATE alone turns masking on; Config::resolve settles that and the rules
  // between the template keys, VALID_SPLIT and VALID_FRACTION.
  s.completions_only = cfg.get_bool("TRAIN_ON_COMPLETIONS_ONLY");
  s.instruction_template = cfg.get_string("INSTRUCTION_TEMPLATE");
  s.text_sample_by = cfg.get_string("TEXT_SAMPLE_BY");
  s.model_max_length = cfg.get_int("MODEL_MAX_LENGTH");

  // The model folder: its tokenizer and max_position_embeddings.
  std::string model_name = cfg.get_string("MODEL_NAME");
  if (const auto missing = cfg.missing_run_inputs(); !missing.empty()) throw DataError(fmt::format("{}", fmt::join(missing, "; ")));
  try {
    // The tokenizer and config.json only: weights (gigabytes) wait for `train`.
    out.model_dir = model::resolve_model_dir(model_name, model::process_env, {"config.json"}, /*weights=*/false).path;
  } catch (const model::ModelNotFoundError& e) {
    // The tutorial's data step (dataload.py) needed no model: `data` still writes DATA_FILE, and
    // the token cache waits for the model.
    if (!options.allow_missing_model) throw DataError(fmt::format("MODEL_NAME: {}", e.what()));
    out.missing_model = fmt::format("MODEL_NAME: {}", e.what());
  } catch (const model::ModelError& e) {
    throw DataError(fmt::format("MODEL_NAME: {}\n(the data is tokenized with the model's tokenizer into the token "
                                "cache, so the model folder is needed)",
                                e.what()));
  }
  std::unique_ptr<tokenizer::Tokenizer> tok;
  if (out.missing_model.empty()) {
    std::string cap_warning;
    s.block_size = effective_block_size(cfg, out.model_dir, &cap_warning);
    if (!cap_warning.empty()) spdlog::warn("{}", cap_warning);
    try {
      tok = tokenizer::load_tokenizer(out.model_dir);
    } catch (const tokenizer::TokenizerError& e) {
      throw model::ModelError(fmt::format("MODEL_NAME {}: cannot load its tokenizer: {}", model_name, e.what()));
    }
  }

  // The rows.
  DatasetSource source = resolve_dataset(cfg.get_string("DATA_PATH"));
  const fs::path project = cfg.get_string("AUTOTRAIN_PROJECT_NAME");
  const fs::path data_file = cfg.get_string("DATA_FILE");
  out.cache_dir = project / "autotrain-data";
  // DATA_FILE is our output, not a source, while it holds what a `data` run wrote there (recorded
  // beside that project's cache); project folders are ours too, whichever project made them
  // (PROJECT_ID changes the folder). A DATA_FILE the user made (DATA_PATH=. over their own
  // train.csv) stays data. Only a folder can hold them among its sources.
  const fs::path data_file_record = out.cache_dir / "data_file.json";
  // Made when something is first written there, and blamed on the setting that names it.
  auto make_cache_dir = [&] {
    std::error_code ec;
    fs::create_directories(out.cache_dir, ec);
    if (ec)
      throw DataError(fmt::format("AUTOTRAIN_PROJECT_NAME {}: cannot create {} ({}); set AUTOTRAIN_PROJECT_NAME to a "
                                  "folder that can be written (a path that is not a file)",
                                  project.string(), out.cache_dir.string(), ec.message()));
  };
  // What a killed run (kill -9, the OOM killer) left half-written in the cache: the caller holds
  // the project lock, so no one is writing them.
  if (!options.read_only) {
    for (const auto& leftover : io::leftover_temporaries(out.cache_dir)) {
      std::error_code ec;
      fs::remove_all(leftover, ec);
    }
  }
  if (tok) {
    // The run writes tokenizer files, README.md and (full fine-tuning) config.json and
    // model.safetensors into the project folder: in the model folder they would replace the base.
    std::error_code ec;
    const fs::path model = fs::weakly_canonical(out.model_dir, ec), proj = fs::weakly_canonical(project, ec);
    if (!ec && model == proj)
      throw DataError(fmt::format("AUTOTRAIN_PROJECT_NAME {} is the MODEL_NAME folder {}: the run's outputs would "
                                  "overwrite the base model's files; give the project its own folder",
                                  project.string(), out.model_dir.string()));
  }
  if (!source.single_file) {
    // Project folders inside DATA_PATH are skipped as sources (below); DATA_PATH itself being the
    // project folder cannot be: the run's outputs (training_params.json, metrics.jsonl, ...)
    // would be the next run's data.
    std::error_code ec;
    const fs::path root = fs::weakly_canonical(source.root, ec), proj = fs::weakly_canonical(project, ec);
    if (!ec && root == proj)
      throw DataError(fmt::format("AUTOTRAIN_PROJECT_NAME {} is the DATA_PATH folder {}: the run's outputs would be read "
                                  "as data by the next run; give the project its own folder (or move the data into a "
                                  "subfolder)",
                                  project.string(), source.root.string()));
  }
  source.exclude = {project};
  if (!source.single_file) source.exclude = autotrain_outputs(source.root, project);
  SplitFiles train_files = source.split_files(s.train_split);
  std::optional<SplitFiles> valid_files;
  if (!s.valid_split.empty()) {
    if (source.single_file)
      throw DataError(fmt::format("VALID_SPLIT={}: DATA_PATH {} is a single file, which holds only the train split; "
                                  "use a folder with a {} file, or VALID_FRACTION",
                                  s.valid_split, source.root.string(), s.valid_split));
    valid_files = source.split_files(s.valid_split, "VALID_SPLIT");
  }

  // DATA_FILE is overwritten: it must not name anything but a data file of ours (or of dataload.py).
  std::error_code ec;
  auto same_file = [&](const fs::path& f) { return fs::equivalent(f, data_file, ec); };
  const bool data_file_is_train_source =
      options.write_data_file && std::any_of(train_files.files.begin(), train_files.files.end(), same_file);
  if (options.write_data_file && !data_file.empty() && !data_file_is_train_source)
    check_data_file_target(data_file, s.text_column, out.model_dir, source, s.valid_split, data_file_record);

  // DATA_FILE and the record that says `data` wrote it (so that it is not read back as data).
  auto write_data_file_bytes = [&](const std::string& bytes) {
    make_cache_dir();
    try {
      if (data_file.has_parent_path()) fs::create_directories(data_file.parent_path());
      io::write_file_atomic(data_file, bytes);
    } catch (const std::runtime_error& e) {  // filesystem_error, or write_file_atomic's
      throw DataError(fmt::format("DATA_FILE {}: cannot write it ({}); set DATA_FILE to a writable path",
                                  data_file.string(), e.what()));
    }
    // The marker beside it, which any project's `data` reads (a folder that can hold DATA_FILE
    // can hold it), and the record beside the cache (a failure here is the cache folder's, exit
    // 1, not DATA_FILE's).
    const std::string sha256 = file_sha256(data_file);
    std::error_code canonical_ec;
    const fs::path made_from = fs::weakly_canonical(fs::absolute(source.root), canonical_ec);
    io::write_file_atomic(data_file_marker(data_file), ordered_json({{"written_by", "autotrain data"},
                                                                     {"data_path", made_from.string()},
                                                                     {"sha256", sha256}})
                                                           .dump(2) + "\n");
    io::write_file_atomic(data_file_record, ordered_json({{"path", fs::absolute(data_file).lexically_normal().string()},
                                                          {"sha256", sha256}})
                                                    .dump(2) + "\n");
  };

  if (!tok) {
    // No model yet: what dataload.py did, and no more. The rows are read all the same (a missing
    // column, a bad line), so `data` still finds what is wrong with the data.
    SplitTexts train_texts = read_split_texts(train_files, s.text_column, s.text_sample_by);
    out.train_stats = SplitStats{.split = s.train_split, .files = file_names(train_files)};
    out.train_stats.rows = static_cast<int64_t>(train_texts.texts.size());
    out.train_stats.skipped = static_cast<int64_t>(train_texts.skipped);
    auto rows_line = [](const SplitStats& st) {
      return fmt::format("{}: {} row{}{} (not tokenized)\n", st.split, thousands(st.rows), st.rows == 1 ? "" : "s",
                         st.skipped ? fmt::format(" ({} skipped: empty text)", thousands(st.skipped)) : std::string());
    };
    // What would fail without a tokenizer fails now, before DATA_FILE is replaced.
    require_text(s, out.train_stats, "train");
    if (s.valid_fraction > 0 && holdout_indices(train_texts.texts.size(), s.valid_fraction, s.seed).empty())
      throw DataError(fmt::format("VALID_FRACTION={}: the train split has {} rows, too few to hold any out",
                                  s.valid_fraction, train_texts.texts.size()));
    out.summary = rows_line(out.train_stats);
    if (valid_files) {
      SplitTexts valid_texts = read_split_texts(*valid_files, s.text_column, s.text_sample_by);
      SplitStats v{.split = s.valid_split, .files = file_names(*valid_files)};
      v.rows = static_cast<int64_t>(valid_texts.texts.size());
      v.skipped = static_cast<int64_t>(valid_texts.skipped);
      require_text(s, v, "validation");
      out.summary += rows_line(v);
    }
    if (options.write_data_file && !data_file.empty()) {
      if (data_file_is_train_source) {
        spdlog::info("DATA_FILE {} is the train split's own file: left as it is", data_file.string());
      } else {
        write_data_file_bytes(render_single_column_csv(s.text_column, train_texts.texts));
        out.data_file = data_file;
      }
    }
    return out;
  }

  // What the blocks depend on.
  ordered_json inputs;
  inputs["model_dir"] = fs::absolute(out.model_dir).lexically_normal().string();
  inputs["tokenizer"] = tok->content_hash();
  inputs["max_position_embeddings"] = max_positions(out.model_dir);
  auto& set = inputs["settings"];
  // Where the data is, not how it was spelt: ../d from one folder and ../../d from its subfolder
  // are the same files (a hub id stays as written).
  {
    std::error_code ec;
    const bool local = source.kind == "file" || source.kind == "folder";
    const fs::path where = local ? fs::weakly_canonical(fs::absolute(source.root), ec) : fs::path();
    set["DATA_PATH"] = local && !ec ? where.string() : cfg.get_string("DATA_PATH");
  }
  set["TRAINER"] = s.trainer;
  set["BLOCK_SIZE"] = s.block_size;
  set["MODEL_MAX_LENGTH"] = s.model_max_length;
  // Recorded as set, even with TRAINER=sft where it changes nothing: the run's identity (and so
  // resuming older checkpoints) depends on these settings as earlier versions recorded them.
  set["ADD_EOS_TOKEN"] = s.add_eos;
  set["TEXT_COLUMN"] = s.text_column;
  set["TRAIN_SPLIT"] = s.train_split;
  set["VALID_SPLIT"] = s.valid_split;
  set["VALID_FRACTION"] = s.valid_fraction;
  if (s.valid_fraction > 0) set["SEED"] = s.seed;
  set["TRAIN_ON_COMPLETIONS_ONLY"] = s.completions_only;
  // Templates matter only while masking: changing an unused one keeps the cache.
  set["RESPONSE_TEMPLATE"] = s.completions_only ? s.response_template : std::string();
  set["INSTRUCTION_TEMPLATE"] = s.completions_only ? s.instruction_template : std::string();
  set["TEXT_SAMPLE_BY"] = s.text_sample_by;
  auto sources_of = [](const SplitFiles& f) {
    ordered_json a = ordered_json::array();
    for (const auto& p : f.files) a.push_back(describe_source(p));
    return a;
  };
  inputs["sources"]["train"] = sources_of(train_files);
  if (valid_files) inputs["sources"]["valid"] = sources_of(*valid_files);
  {
    // The same inputs by content, not by place: a project copied to another folder or machine
    // (another HF_HOME on the GPU node) is still the same run. Paths are left out; the model's
    // own identity is the trainer's business (its weights, not only its tokenizer).
    ordered_json content = inputs;
    content.erase("model_dir");
    content["settings"].erase("DATA_PATH");
    for (auto& [split, files] : content["sources"].items())
      for (auto& f : files) f.erase("path");
    out.inputs_digest = sha256_hex(content.dump());
  }

  const fs::path manifest_path = out.cache_dir / "manifest.json";
  const fs::path train_path = out.cache_dir / "train.safetensors";
  const fs::path valid_path = out.cache_dir / "valid.safetensors";
  const bool want_valid = valid_files || s.valid_fraction > 0;

  // Reuse when everything matches.
  std::string reason;
  std::optional<ordered_json> manifest;
  if (options.force_rebuild) {
    reason = "a rebuild was asked for";
  } else if ((manifest = read_manifest(manifest_path, &reason))) {
    if (auto why = why_different(manifest->value("inputs", ordered_json()), inputs)) {
      reason = *why;
    } else {
      try {
        const auto& sum = manifest->at("summary");
        out.train = map_block_file(train_path, s.block_size);
        out.train_stats = stats_from(sum.at("train"));
        if (want_valid) {
          out.valid = map_block_file(valid_path, s.block_size);
          out.valid_stats = stats_from(sum.at("valid"));
        }
        if (out.train.count != out.train_stats.blocks || (out.valid && out.valid->count != out.valid_stats->blocks))
          throw DataError("block counts differ from the manifest");
        out.reused = true;
      } catch (const std::exception& e) {
        reason = fmt::format("the cache files do not match the manifest ({})", e.what());
        out.valid.reset();
        out.valid_stats.reset();
      }
    }
  }

  SplitTexts train_texts;
  if (!out.reused || options.write_data_file) train_texts = read_split_texts(train_files, s.text_column, s.text_sample_by);
  // The tutorial's dataload.py wrote the whole train split, unchanged (before any hold-out). Its
  // bytes are made now and written only once the blocks are known to be good: a run that fails
  // (no block, no text) leaves the previous DATA_FILE as it was.
  std::optional<std::string> data_file_bytes;
  if (options.write_data_file) {
    out.data_file = data_file;
    if (data_file_is_train_source) {
      // The user's own train file (DATA_PATH=. over their train.csv, or DATA_PATH=DATA_FILE):
      // rewriting it would drop its other columns for no gain.
      spdlog::info("DATA_FILE {} is the train split's own file: left as it is", data_file.string());
      out.data_file.clear();
    } else if (!out.data_file.empty()) {
      data_file_bytes = render_single_column_csv(s.text_column, train_texts.texts);
    }
  }
  auto write_data_file = [&] {
    if (!data_file_bytes) return;
    write_data_file_bytes(*data_file_bytes);
    data_file_bytes.reset();
  };
  if (out.reused) write_data_file();

  if (!out.reused) {
    if (options.read_only)
      throw DataError(fmt::format("the token cache in {} that rank 0 prepared does not match this process's ({}): the "
                                  "processes of a data-parallel run must see the same DATA_PATH, MODEL_NAME files and "
                                  "config",
                                  out.cache_dir.string(), reason));
    if (options.before_rebuild) options.before_rebuild(out.inputs_digest);
    out.rebuild_reason = reason;
    spdlog::info("building the token cache in {}: {}", out.cache_dir.string(), reason);

    SplitTexts valid_texts;
    out.train_stats.split = s.train_split;
    out.train_stats.files = file_names(train_files);
    if (valid_files) {
      valid_texts = read_split_texts(*valid_files, s.text_column, s.text_sample_by);
      out.valid_stats = SplitStats{.split = s.valid_split, .files = file_names(*valid_files)};
    } else if (s.valid_fraction > 0) {
      auto held = holdout_indices(train_texts.texts.size(), s.valid_fraction, s.seed);
      if (held.empty())
        throw DataError(fmt::format("VALID_FRACTION={}: the train split has {} rows, too few to hold any out",
                                    s.valid_fraction, train_texts.texts.size()));
      // Both parts keep the file order (the default trainer's shards are contiguous runs).
      SplitTexts kept;
      size_t h = 0;
      for (size_t i = 0; i < train_texts.texts.size(); ++i) {
        SplitTexts& to = (h < held.size() && held[h] == i) ? (++h, valid_texts) : kept;
        to.texts.push_back(std::move(train_texts.texts[i]));
        to.empty.push_back(train_texts.empty[i]);
        to.skipped += train_texts.empty[i];
      }
      train_texts = std::move(kept);
      out.valid_stats = SplitStats{.split = fmt::format("valid (held out of {}: VALID_FRACTION={}, SEED={})",
                                                        s.train_split, s.valid_fraction, s.seed),
                                   .files = file_names(train_files)};
    }
    out.train_stats.rows = static_cast<int64_t>(train_texts.texts.size());
    out.train_stats.skipped = static_cast<int64_t>(train_texts.skipped);
    Blocks train = build_split(s, *tok, train_texts, out.train_stats);
    if (train.count == 0) too_few_tokens(s, out.train_stats, train, "train");
    if (s.completions_only) count_unscored_blocks(s, out.train_stats, train, "train");
    std::optional<Blocks> valid;
    if (out.valid_stats) {
      out.valid_stats->rows = static_cast<int64_t>(valid_texts.texts.size());
      out.valid_stats->skipped = static_cast<int64_t>(valid_texts.skipped);
      valid = build_split(s, *tok, valid_texts, *out.valid_stats);
      if (valid->count == 0) too_few_tokens(s, *out.valid_stats, *valid, "validation");
      if (s.completions_only) count_unscored_blocks(s, *out.valid_stats, *valid, "validation");
    }

    // The manifest goes first and last: removed before the block files change, written after
    // they are complete, so a cache interrupted half-way is never taken as valid.
    make_cache_dir();
    fs::remove(manifest_path);
    write_block_file(train_path, train);
    if (valid) {
      write_block_file(valid_path, *valid);
    } else {
      fs::remove(valid_path);
    }
    ordered_json m;
    m["format"] = kManifestFormat;
    m["inputs"] = inputs;
    m["summary"]["train"] = stats_json(out.train_stats);
    if (out.valid_stats) m["summary"]["valid"] = stats_json(*out.valid_stats);
    io::write_file_atomic(manifest_path, m.dump(2) + "\n");
    out.train = map_block_file(train_path, s.block_size);
    if (valid) out.valid = map_block_file(valid_path, s.block_size);
    // Last: a run that fails before here (no space for the cache, interrupted) leaves the
    // previous DATA_FILE as it was.
    write_data_file();
  }

  out.summary = describe(out.train_stats, s.block_size) + "\n";
  if (out.valid_stats) out.summary += describe(*out.valid_stats, s.block_size) + "\n";
  if (out.train_stats.without_template)
    spdlog::warn("{} training examples do not contain RESPONSE_TEMPLATE '{}' and are fully masked (no loss)",
                 out.train_stats.without_template, s.response_template);
  return out;
}

}  // namespace autotrain::data
