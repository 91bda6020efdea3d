// Where DATA_PATH's rows come from: a file (.jsonl/.json/.csv/.txt), a folder of split files, or
// a dataset in the Hugging Face hub cache; and the texts of one column of a split. No LibTorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autotrain/data/error.h"
#include "autotrain/model/model_dir.h"

namespace autotrain::data {

// The files of one split, in the order their rows are read.
struct SplitFiles {
  std::string split;
  std::vector<std::filesystem::path> files;
};

struct DatasetSource {
  std::filesystem::path root;  // the file or folder DATA_PATH resolved to
  std::string kind;            // "file", "folder" or "Hugging Face cache"
  bool single_file = false;
  // Never read as data from a folder: what autotrain itself wrote there (the project folder, the
  // DATA_FILE an earlier `data` wrote) when DATA_PATH is a folder that holds them (DATA_PATH=.).
  std::vector<std::filesystem::path> exclude;
  // Finds the files of `split`. A single file is the train split (whatever its name; it has no
  // other split). In a folder: `{split}.csv|jsonl|json|txt` when present (what AutoTrain checks
  // first), else every supported file whose name carries the split as a word, as the datasets
  // library matches them, in the file's name or a folder's (`x_train.jsonl`, `train/0.jsonl`; for
  // `test` also `eval`/`evaluation`/`testing`; for `validation` also `valid`/`val`/`dev`; for
  // `train` also `training`); a folder where no file names any split is all train. Hidden files,
  // `exclude` and the datasets library's metadata files (dataset_info.json, state.json, ...) are
  // skipped. Throws DataError listing the files there when none match.
  // `setting` names the key that chose the split (TRAIN_SPLIT or VALID_SPLIT), for the error.
  SplitFiles split_files(std::string_view split, std::string_view setting = "TRAIN_SPLIT") const;
  // The split `file` is data of, when it is one of this source's data files (not excluded): the
  // split its name or folder carries, else its stem when it lies in the folder itself (the
  // `{split}.csv` a VALID_SPLIT could name), else "train". nullopt for anything else.
  std::optional<std::string> split_of(const std::filesystem::path& file) const;
};

// What autotrain wrote, to be skipped when a folder is read as data: every project folder
// under `folder` (one holding autotrain-data/manifest.json, whichever project made it) and
// `project` itself, and each DATA_FILE that `data` made from this folder and wrote there (its
// marker says so), or that one of those projects' autotrain-data/data_file.json records, while
// the file still holds what was written. A file the user has since changed, or made, is theirs,
// and so is one made from another DATA_PATH: it stays data.
std::vector<std::filesystem::path> autotrain_outputs(const std::filesystem::path& folder,
                                                     const std::filesystem::path& project);

// The hidden file `data` writes beside each DATA_FILE (".train.csv.autotrain.json": the SHA-256
// of what it wrote and the DATA_PATH it was made from), so that any project's `data` knows the
// file for its own output (PROJECT_ID changes the project folder, and with it the record in
// autotrain-data/, from run to run).
std::filesystem::path data_file_marker(const std::filesystem::path& data_file);
// The DATA_PATH (absolute) that `file` was made from, while it still holds what `data` wrote
// there; nullopt for a file without a marker, or changed since.
std::optional<std::filesystem::path> data_file_source(const std::filesystem::path& file);
inline bool written_by_data(const std::filesystem::path& file) { return data_file_source(file).has_value(); }

// Resolves DATA_PATH: an existing file or folder, else `<hub cache>/datasets--ORG--NAME/
// snapshots/<refs/main>/`. Throws DataError listing every place looked at.
DatasetSource resolve_dataset(std::string_view data_path, const model::EnvLookup& env = model::process_env);

// The texts of `column` in the rows of `files`. A row whose cell is null, missing from a JSON
// object or empty is kept as an empty text and counted in `skipped` (positions matter to the
// default trainer's sharding); numbers become their JSON text, booleans True/False (as pandas
// writes them).
struct SplitTexts {
  std::vector<std::string> texts;
  std::vector<bool> empty;  // per row: skipped (empty or null)
  size_t skipped = 0;
};

// Throws DataError when the column does not exist in a file (listing the columns that do), or a
// cell holds an array or object. .txt files have one column, "text", cut into examples by
// `txt_sample_by` (TEXT_SAMPLE_BY: line, paragraph or document; see read_text_examples).
SplitTexts read_split_texts(const SplitFiles& files, const std::string& column, std::string_view txt_sample_by = "line");

// The rows to hold out for validation: ceil(fraction * n) distinct indices (at least 1 when
// fraction > 0 and n > 1, never all n), chosen by a seeded Fisher-Yates shuffle on
// std::mt19937_64 (fully specified by the standard, so the same on every machine); sorted.
std::vector<size_t> holdout_indices(size_t n, double fraction, uint64_t seed);

}  // namespace autotrain::data
