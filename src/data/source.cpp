// DATA_PATH resolution and split selection (see autotrain/data/source.h).
#include "autotrain/data/source.h"

#include "autotrain/data/columnar.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "autotrain/data/readers.h"
#include "autotrain/data/sha256.h"

namespace autotrain::data {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kExtensions = {".csv", ".jsonl", ".json", ".txt", ".parquet", ".arrow", ".feather"};

// By format, a compression suffix (.gz, .zst, .bz2, .xz) aside; columnar files compress their own
// pages, so a suffix around them is not read.
bool supported(const fs::path& p) {
  const std::string format = format_of(p);
  if (is_columnar_format(format) && p.extension() != format) return false;
  return std::find(kExtensions.begin(), kExtensions.end(), format) != kExtensions.end();
}

// The datasets library's split keywords: a file belongs to a split when one of these is a word
// of its name (words are separated by `-`, `_`, `.`, space or digits).
std::vector<std::string> split_keywords(std::string_view split) {
  if (split == "train" || split == "training") return {"train", "training"};
  if (split == "validation" || split == "valid" || split == "val" || split == "dev")
    return {"validation", "valid", "val", "dev"};
  if (split == "test" || split == "testing" || split == "eval" || split == "evaluation")
    return {"test", "testing", "eval", "evaluation"};
  return {std::string(split)};
}

std::vector<std::string> name_words(std::string_view stem) {
  std::vector<std::string> words;
  std::string w;
  for (char c : stem) {
    if (c == '-' || c == '_' || c == '.' || c == ' ' || (c >= '0' && c <= '9')) {
      if (!w.empty()) words.push_back(std::move(w));
      w.clear();
    } else {
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  if (!w.empty()) words.push_back(std::move(w));
  return words;
}

// The file's name or one of its folders below the dataset root carries a split keyword, as the
// datasets library matches both (`x_train.jsonl`, `train/shard-0.jsonl`, `data/test-00000.json`).
bool names_split(const fs::path& root, const fs::path& p, const std::vector<std::string>& keywords) {
  auto hit = [&](const std::string& name) {
    for (const auto& w : name_words(name))
      if (std::find(keywords.begin(), keywords.end(), w) != keywords.end()) return true;
    return false;
  };
  if (hit(data_stem(p))) return true;
  for (const auto& dir : p.lexically_relative(root).parent_path())
    if (hit(dir.string())) return true;
  return false;
}

bool names_any_split(const fs::path& root, const fs::path& p) {
  for (const char* s : {"train", "validation", "test"})
    if (names_split(root, p, split_keywords(s))) return true;
  return false;
}

// Files the datasets library writes beside the data (save_to_disk, dataset cards): never rows.
bool is_metadata(const fs::path& p) {
  static const std::set<std::string> names = {"dataset_info.json", "dataset_infos.json", "dataset_dict.json",
                                              "state.json"};
  return names.count(p.filename().string()) > 0;
}

bool is_excluded(const fs::path& p, const std::vector<fs::path>& exclude) {
  std::error_code ec;
  for (const auto& e : exclude)
    if (fs::equivalent(p, e, ec)) return true;
  return false;
}

// Supported files under `root` (hidden entries skipped), relative names sorted, as the datasets
// library orders data files.
std::vector<fs::path> data_files(const fs::path& root, const std::vector<fs::path>& exclude,
                                 std::vector<fs::path>* unsupported) {
  std::vector<fs::path> out;
  std::error_code ec;
  // The folder itself must be readable: skip_permission_denied (meant for subfolders) would make
  // an unreadable DATA_PATH look empty ("Files there: none").
  fs::directory_iterator(root, ec);
  if (ec)
    throw DataError(fmt::format("DATA_PATH {}: cannot read the folder ({}); make it readable (chmod u+rx)",
                                root.string(), ec.message()));
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path& p = it->path();
    if (p.filename().string().starts_with(".") || is_excluded(p, exclude)) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    if (is_metadata(p)) continue;
    if (supported(p)) {
      out.push_back(p);
    } else if (unsupported && p.extension() != ".md" && p.filename() != ".gitattributes") {
      unsupported->push_back(p);
    }
  }
  std::sort(out.begin(), out.end(), [&](const fs::path& a, const fs::path& b) {
    return a.lexically_relative(root).generic_string() < b.lexically_relative(root).generic_string();
  });
  return out;
}

// The datasets library reads one format per split: the one whose extension is most common among
// the split's files (every dotted suffix of a name counts: `a.jsonl.gz` counts .jsonl), ties going
// to .parquet, .arrow, .jsonl, .json, .csv, then the extension last in alphabetical order; files of
// the other formats are left out (load.py infer_module_for_data_files_list, then
// DataFilesDict.filter). A stray LICENSE.txt beside the .jsonl files is not read as rows.
// .feather (not a datasets format) counts as .arrow, the format it is.
std::vector<fs::path> one_format_as_datasets_reads(const fs::path& root, std::vector<fs::path> files) {
  auto module_of = [](const std::string& ext) -> std::string {
    if (ext == ".json" || ext == ".jsonl") return "json";
    if (ext == ".arrow" || ext == ".feather") return "arrow";
    if (ext == ".csv" || ext == ".txt" || ext == ".parquet") return ext;
    return {};
  };
  std::map<std::string, size_t> count;
  for (const auto& f : files) {
    const std::string name = f.filename().string();
    for (size_t dot = name.find('.'); dot != std::string::npos;) {
      const size_t next = name.find('.', dot + 1);
      std::string ext = name.substr(dot, next == std::string::npos ? std::string::npos : next - dot);
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
      if (!module_of(ext).empty()) ++count[ext];
      dot = next;
    }
  }
  if (count.empty()) return files;
  // A draw's favourites, least favoured first; any other extension ranks below them.
  auto rank = [](const std::string& ext) -> long {
    static const std::vector<std::string> favourites = {".csv", ".json", ".jsonl", ".arrow", ".parquet"};
    const auto it = std::find(favourites.begin(), favourites.end(), ext);
    return it == favourites.end() ? 0 : 1 + (it - favourites.begin());
  };
  const auto best = std::max_element(count.begin(), count.end(), [&](const auto& a, const auto& b) {
    if (a.second != b.second) return a.second < b.second;
    if (rank(a.first) != rank(b.first)) return rank(a.first) < rank(b.first);
    return a.first < b.first;
  });
  const std::string module = module_of(best->first);
  std::vector<fs::path> kept, left_out;
  for (auto& f : files) (module_of(format_of(f)) == module ? kept : left_out).push_back(std::move(f));
  if (!left_out.empty()) {
    std::vector<std::string> names;
    for (const auto& f : left_out) names.push_back(f.lexically_relative(root).generic_string());
    spdlog::warn("{}: the files hold more than one format; {} is the most common, so only those files are read, as "
                 "the datasets library reads a folder; left out: {} (move them elsewhere, or name one file with "
                 "DATA_PATH)",
                 root.string(), best->first, fmt::join(names, ", "));
  }
  return kept;
}

// huggingface_hub's rule for repo ids (validate_repo_id): "name" or "org/name", each part of
// letters, digits, '-', '_' and '.', not opening or closing with '-' or '.', without "--" or "..",
// each part 96 characters at most. "./data", "~/x", "/abs" and "a/b/c" are paths, never ids.
bool could_be_hub_id(std::string_view s) {
  if (s.empty() || s.find("--") != std::string_view::npos || s.find("..") != std::string_view::npos) return false;
  const auto slash = s.find('/');
  auto part_ok = [](std::string_view p) {
    if (p.empty() || p.size() > 96 || p.front() == '-' || p.front() == '.' || p.back() == '-' || p.back() == '.') return false;
    return std::all_of(p.begin(), p.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
  };
  if (slash == std::string_view::npos) return part_ok(s);
  return part_ok(s.substr(0, slash)) && part_ok(s.substr(slash + 1));
}

}  // namespace

std::vector<fs::path> autotrain_outputs(const fs::path& folder, const fs::path& project) {
  auto is_project = [](const fs::path& dir) {
    std::error_code ec;
    return fs::is_regular_file(dir / "autotrain-data" / "manifest.json", ec) ||
           fs::is_regular_file(dir / "autotrain-data" / "data_file.json", ec);
  };
  std::vector<fs::path> projects = {project};
  std::vector<fs::path> marked;  // DATA_FILEs by their markers
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(folder, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    constexpr std::string_view kMarkerSuffix = ".autotrain.json";
    if (name.size() > 1 + kMarkerSuffix.size() && name.starts_with(".") && name.ends_with(kMarkerSuffix) &&
        it->is_regular_file(ec)) {
      const fs::path file = it->path().parent_path() / name.substr(1, name.size() - 1 - kMarkerSuffix.size());
      const auto from = data_file_source(file);
      std::error_code same_ec;
      if (from && fs::equivalent(*from, folder, same_ec)) {
        marked.push_back(file);
        spdlog::info("DATA_PATH {}: {} is what `autotrain data` made from this folder (its marker {} says so): not "
                     "read back as data (delete the marker to read it)",
                     folder.string(), file.lexically_relative(folder).generic_string(), name);
      }
      continue;
    }
    if (!it->is_directory(ec)) continue;
    if (name.starts_with(".")) {
      it.disable_recursion_pending();
    } else if (is_project(it->path())) {
      projects.push_back(it->path());
      it.disable_recursion_pending();
    }
  }
  std::vector<fs::path> out = projects;
  out.insert(out.end(), marked.begin(), marked.end());
  for (const auto& p : projects) {
    try {
      auto record = nlohmann::json::parse(read_file_bytes(p / "autotrain-data" / "data_file.json"));
      const fs::path written = record.at("path").get<std::string>();
      if (fs::is_regular_file(written, ec) && record.at("sha256").get<std::string>() == file_sha256(written))
        out.push_back(written);
    } catch (const std::exception&) {
      // no record (or an unreadable one): that project's `data` wrote no DATA_FILE we know of
    }
  }
  return out;
}

fs::path data_file_marker(const fs::path& data_file) {
  return data_file.parent_path() / ("." + data_file.filename().string() + ".autotrain.json");
}

std::optional<fs::path> data_file_source(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  try {
    const auto marker = nlohmann::json::parse(read_file_bytes(data_file_marker(file)));
    if (marker.at("sha256").get<std::string>() != file_sha256(file)) return std::nullopt;
    return fs::path(marker.at("data_path").get<std::string>());
  } catch (const std::exception&) {
    return std::nullopt;  // no marker, or not one of ours
  }
}

DatasetSource resolve_dataset(std::string_view data_path, const model::EnvLookup& env) {
  if (data_path.empty())
    throw DataError("DATA_PATH is empty: set it to a .jsonl/.json/.csv/.txt/.parquet/.arrow file, a folder of split files, or a "
                    "Hugging Face dataset id (org/name)");
  std::vector<std::string> looked;
  fs::path local(data_path);
  std::error_code ec;
  if (fs::is_regular_file(local, ec)) {
    if (!supported(local))
      throw DataError(fmt::format("DATA_PATH {}: unknown format '{}'; use .jsonl, .json, .csv, .txt (one example per line), "
                                  "each also as .gz, .zst, .bz2 or .xz, or .parquet, .arrow or .feather",
                                  local.string(), local.extension().string()));
    return {local, "file", true, {}};
  }
  if (fs::is_directory(local, ec)) return {local, "folder", false, {}};
  looked.push_back(fmt::format("local file or folder {} (does not exist)", fs::absolute(local, ec).string()));

  // huggingface_hub's cache: datasets--ORG--NAME/snapshots/<refs/main>/.
  const std::string repo(data_path);
  const bool hub_id = could_be_hub_id(repo);
  std::string download_failure;
  if (hub_id) {
    const fs::path repo_dir = model::hf_hub_cache(env) / model::hub_repo_folder(repo, model::RepoType::dataset);
    auto in_cache = [&](std::string& seen) -> std::optional<fs::path> {
      const fs::path snapshot = model::hub_snapshot_path(repo_dir);
      if (!snapshot.empty() && fs::is_directory(snapshot, ec)) return snapshot;
      seen = fmt::format("Hugging Face cache {} ({})", repo_dir.string(),
                         !fs::exists(repo_dir, ec) ? "not there"
                         : snapshot.empty()        ? "no refs/main"
                                                   : "snapshot " + snapshot.filename().string() + " missing");
      return std::nullopt;
    };
    std::string seen;
    if (auto snapshot = in_cache(seen)) return {*snapshot, "Hugging Face cache", false, {}};
    looked.push_back(seen);
    // A name with a data file's extension (data/train.jsonl) is a path that is missing, never a
    // dataset to fetch: someone else's repository of that name must not be trained on.
    if (const model::RepoFetcher& fetch = model::repo_fetcher(); fetch && !supported(local)) {
      try {
        fetch(repo, model::RepoType::dataset, {}, false);
        if (auto snapshot = in_cache(seen)) return {*snapshot, "Hugging Face Hub (downloaded into the cache)", false, {}};
        download_failure = "the download left no snapshot in the cache (" + seen + ")";
      } catch (const std::exception& e) {
        download_failure = e.what();
      }
    }
  }
  // A dataset id gets the download hint; a path (./data, ~/x.csv, a/b/c) only the path to check.
  if (!hub_id || supported(local))
    throw DataError(fmt::format("DATA_PATH {}: no dataset found. Looked at:\n  - {}\nCheck the path (relative paths "
                                "start from the folder you run in), or name a dataset id (org/name) in the Hugging "
                                "Face cache",
                                data_path, fmt::join(looked, "\n  - ")));
  if (!download_failure.empty())
    throw DataError(fmt::format("DATA_PATH {}: no dataset found. Looked at:\n  - {}\nDownloading it failed: {}", data_path,
                                fmt::join(looked, "\n  - "), download_failure));
  throw DataError(fmt::format(
      "DATA_PATH {}: no dataset found. Looked at:\n  - {}\nUse a local .jsonl/.json/.csv/.txt/.parquet/.arrow file or folder, or "
      "download the dataset first (`autotrain download --repo-type dataset {}`; set HF_HUB_CACHE or HF_HOME if your "
      "cache is elsewhere)",
      data_path, fmt::join(looked, "\n  - "), data_path));
}

SplitFiles DatasetSource::split_files(std::string_view split, std::string_view setting) const {
  if (single_file) return {std::string(split), {root}};
  std::error_code ec;
  // {split}.csv first, as AutoTrain looked for it, then the other formats, each also compressed.
  std::vector<std::string> direct_names;
  std::vector<std::string> compressions = compression_suffixes();
  compressions.insert(compressions.begin(), "");
  for (const auto& e : kExtensions)
    for (const auto& z : compressions)
      if (!is_columnar_format(e) || z.empty()) direct_names.push_back(std::string(split) + e + z);
  for (size_t e = 0; e < direct_names.size(); ++e) {
    fs::path direct = root / direct_names[e];
    if (!fs::is_regular_file(direct, ec) || is_excluded(direct, exclude)) continue;
    // A second {split}.* beside the one read is not read, which must not pass unnoticed (half the
    // data, or the wrong half).
    for (size_t other = e + 1; other < direct_names.size(); ++other) {
      fs::path also = root / direct_names[other];
      if (fs::is_regular_file(also, ec) && !is_excluded(also, exclude))
        spdlog::warn("{}: both {} and {} are there; the {} split is read from {} only (remove or rename the other)",
                     root.string(), direct.filename().string(), also.filename().string(), split,
                     direct.filename().string());
    }
    return {std::string(split), {direct}};
  }
  std::vector<fs::path> unsupported;
  auto files = data_files(root, exclude, &unsupported);
  SplitFiles out{std::string(split), {}};
  auto keywords = split_keywords(split);
  for (const auto& f : files)
    if (names_split(root, f, keywords)) out.files.push_back(f);
  bool none_named =
      std::none_of(files.begin(), files.end(), [&](const fs::path& f) { return names_any_split(root, f); });
  if (out.files.empty() && none_named && keywords.front() == "train") out.files = files;
  if (!out.files.empty()) {
    out.files = one_format_as_datasets_reads(root, std::move(out.files));
    return out;
  }

  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.lexically_relative(root).generic_string());
  for (const auto& f : unsupported) names.push_back(f.lexically_relative(root).generic_string() + " (unsupported format)");
  for (const auto& f : exclude) {
    // Only what is in this folder: DATA_FILE is usually elsewhere.
    std::error_code file_ec;
    const fs::path inside = fs::weakly_canonical(f, file_ec).lexically_relative(fs::weakly_canonical(root, file_ec));
    if (file_ec || inside.empty() || *inside.begin() == "..") continue;
    if (fs::is_regular_file(f, file_ec) && written_by_data(f))
      names.push_back(inside.generic_string() + " (autotrain data's output from this folder; " +
                      data_file_marker(f).filename().string() + " says so)");
  }
  throw DataError(fmt::format(
      "{} {}: no file for split '{}' (looked for {}.csv|jsonl|json|txt (.gz, .zst, .bz2, .xz)|parquet|arrow|feather and names containing {}). Files there: {}. "
      "Name the split's file after it, or set {}",
      kind, root.string(), split, split, fmt::join(keywords, "|"), names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", ")),
      setting == "VALID_SPLIT" ? "VALID_SPLIT (or VALID_FRACTION)" : std::string(setting)));
}

std::optional<std::string> DatasetSource::split_of(const fs::path& file) const {
  std::error_code ec;
  if (single_file) return fs::equivalent(root, file, ec) ? std::optional<std::string>("train") : std::nullopt;
  for (const auto& f : data_files(root, exclude, nullptr)) {
    if (!fs::equivalent(f, file, ec)) continue;
    for (const char* split : {"train", "validation", "test"})
      if (names_split(root, f, split_keywords(split))) return split;
    if (fs::equivalent(f.parent_path(), root, ec)) return data_stem(f);
    return "train";
  }
  return std::nullopt;
}

SplitTexts read_split_texts(const SplitFiles& files, const std::string& column, std::string_view txt_sample_by) {
  SplitTexts out;
  auto add = [&](std::string text) {
    bool empty = text.empty();
    out.texts.push_back(std::move(text));
    out.empty.push_back(empty);
    out.skipped += empty;
  };
  for (const auto& file : files.files) {
    if (format_of(file) == ".txt") {
      if (column != "text")
        throw DataError(fmt::format("{}: a .txt file has one column, \"text\" (each line an example), not \"{}\"; "
                                    "set TEXT_COLUMN=text",
                                    file.string(), column));
      for (auto& example : read_text_examples(file, txt_sample_by)) add(std::move(example));
      continue;
    }
    if (is_columnar_format(file.extension().string())) {
      // Columnar files (the Hub's Parquet, save_to_disk's Arrow, pandas' Feather v2): the text column alone.
      auto table = read_column_text_file(file, column);
      if (!table.found)
        throw DataError(fmt::format("{}: no column \"{}\"; the columns are: {}. Set TEXT_COLUMN to one of them",
                                    file.string(), column, fmt::join(table.columns, ", ")));
      for (auto& v : table.values) add(v ? std::move(*v) : std::string());
      continue;
    }
    auto rows = read_rows(file);
    // A column counts as present when any row has it (JSON rows may omit keys, like datasets'
    // schema inference, which fills them with null).
    bool present = false;
    std::set<std::string> columns;
    for (const auto& r : rows) {
      if (!r.value.is_object())
        throw DataError(fmt::format("{}:{}: expected a JSON object per row", file.string(), r.line));
      if (r.value.contains(column)) present = true;
      if (!present)
        for (const auto& [k, v] : r.value.items()) columns.insert(k);
    }
    if (rows.empty() && format_of(file) == ".csv") {
      // A header without rows still names the columns: a wrong TEXT_COLUMN is said as such.
      for (auto& c : read_csv_columns(file)) columns.insert(std::move(c));
      present = columns.empty() || columns.count(column) > 0;
    }
    if (!present && (!rows.empty() || !columns.empty()))
      throw DataError(fmt::format("{}: no column \"{}\"; the columns are: {}. Set TEXT_COLUMN to one of them",
                                  file.string(), column, fmt::join(columns, ", ")));
    for (const auto& r : rows) {
      auto it = r.value.find(column);
      if (it == r.value.end() || it->is_null()) {
        add("");
      } else if (auto text = cell_text(*it)) {
        add(std::move(*text));
      } else {
        throw DataError(fmt::format("{}:{}: column \"{}\" holds {}, not text; set TEXT_COLUMN to a column of "
                                    "strings (nested fields are not flattened: write the text into a top-level field)",
                                    file.string(), r.line, column, it->type_name()));
      }
    }
  }
  return out;
}

std::vector<size_t> holdout_indices(size_t n, double fraction, uint64_t seed) {
  if (fraction <= 0 || n < 2) return {};
  size_t k = static_cast<size_t>(std::ceil(fraction * static_cast<double>(n)));
  k = std::clamp<size_t>(k, 1, n - 1);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  // Fisher-Yates with our own index draw: std::uniform_int_distribution differs between
  // standard libraries, mt19937_64's output does not. The modulo bias is below 2^-40 here.
  for (size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng() % (i + 1)]);
  std::vector<size_t> picked(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k));
  std::sort(picked.begin(), picked.end());
  return picked;
}

}  // namespace autotrain::data
