// Writing a new model folder from a source folder. See model_folder.h.
#include "autotrain/model/model_folder.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "autotrain/io/atomic_file.h"
#include "autotrain/io/json_error.h"
#include "autotrain/io/json_text.h"
#include "autotrain/io/temp_paths.h"
#include "autotrain/model/falcon_config.h"

namespace autotrain::model {

namespace fs = std::filesystem;

namespace {

// Copies a tokenizer or code file (megabytes at most) through write_file_atomic, whose errors
// say what happened: std::filesystem::copy_file reports a disk that fills up during the copy as
// "Input/output error" (a short sendfile).
void copy_small_file(const fs::path& from, const fs::path& to) {
  std::ifstream in(from, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in || in.bad())
    throw std::runtime_error(fmt::format("{}: cannot read it ({})", from.string(), std::strerror(errno)));
  io::write_file_atomic(to, bytes.str());
}

}  // namespace

fs::path output_folder(const fs::path& out) {
  fs::path p = fs::absolute(out).lexically_normal();
  while (!p.has_filename() && p.has_relative_path()) p = p.parent_path();
  // A link to a folder means that folder: replacing the link itself would leave its target empty.
  std::error_code ec;
  if (fs::is_symlink(fs::symlink_status(p, ec))) p = fs::weakly_canonical(p, ec);
  return p;
}

void check_output_folder(const fs::path& folder) {
  std::error_code ec;
  const auto st = fs::symlink_status(folder, ec);
  if (ec || !fs::exists(st)) {
    // A new folder: the first folder above it that exists must take new folders (the temporary
    // one is made beside it). Found here, before a large model is read, not when it is written.
    fs::path above = folder.parent_path();
    if (above.empty()) above = ".";
    while (!fs::exists(fs::symlink_status(above, ec)) && above.has_relative_path()) above = above.parent_path();
    if (!fs::is_directory(above, ec))  // a file, a dangling link, a FIFO ...
      throw std::invalid_argument(fmt::format("--out {}: cannot be created, {} is not a folder; choose another --out",
                                              folder.string(), above.string()));
    // Permissions alone do not say it (root, read-only mounts, /proc): make a folder and remove it.
    std::string probe = (above / ".autotrain-out-probe-XXXXXX").string();
    if (::mkdtemp(probe.data()) == nullptr) {
      const int error = errno;
      throw std::invalid_argument(fmt::format("--out {}: cannot create folders in {} ({}); choose another --out",
                                              folder.string(), above.string(), std::strerror(error)));
    }
    fs::remove(probe, ec);
    if (ec) fmt::print(stderr, "warning: could not remove the test folder {} ({}); remove it by hand\n", probe, ec.message());
    return;
  }
  if (!fs::is_directory(fs::status(folder, ec)))
    throw std::invalid_argument(fmt::format(
        "--out {}: is a file, not a folder; left as it is. Give a folder that does not exist yet or is empty",
        folder.string()));
  if (!fs::is_empty(folder))
    throw std::invalid_argument(
        fmt::format("--out {}: exists and is not empty; choose a new --out folder (or an empty one)", folder.string()));
}

nlohmann::ordered_json read_ordered_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(fmt::format("cannot read {}", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return io::parse_json_text<nlohmann::ordered_json>(text.str());
  } catch (const std::exception& e) {
    throw ModelError(fmt::format("{}: not valid JSON: {}", path.string(), io::json_error_text(e)));
  }
}

std::vector<std::string> remote_code_files(const fs::path& source_dir, const nlohmann::ordered_json& cfg) {
  std::set<std::string> files;
  for (const auto& entry : fs::directory_iterator(source_dir))
    if (entry.path().extension() == ".py" && entry.is_regular_file()) files.insert(entry.path().filename().string());
  if (cfg.contains("auto_map") && cfg["auto_map"].is_object())
    for (const auto& [key, ref] : cfg["auto_map"].items()) {
      std::vector<std::string> refs;
      if (ref.is_string()) refs.push_back(ref.get<std::string>());
      if (ref.is_array())  // AutoTokenizer: [slow, fast], either may be null
        for (const auto& r : ref)
          if (r.is_string()) refs.push_back(r.get<std::string>());
      for (const auto& r : refs) {
        // "org/repo--module.Class" is code in another repository; a bare name is no module.
        if (r.find("--") != std::string::npos || r.find('.') == std::string::npos) continue;
        const std::string module = r.substr(0, r.rfind('.')) + ".py";
        if (!files.count(module))
          throw ModelError(fmt::format(
              "{}: config.json's auto_map names {} for {}, but {} is not in the folder; without it the written "
              "checkpoint cannot be loaded with trust_remote_code. Download the model's .py files too",
              source_dir.string(), r, key, module));
      }
    }
  return {files.begin(), files.end()};
}

void set_config_dtype(nlohmann::ordered_json& cfg, const std::string& dtype_name) {
  // A source saved by transformers 5 ("dtype": "float32") written in bf16 must not keep its
  // float32 there: transformers 5 reads "dtype" before the old "torch_dtype".
  cfg["dtype"] = dtype_name;
  if (cfg.contains("torch_dtype")) cfg["torch_dtype"] = dtype_name;
}

void write_model_folder(const fs::path& source_dir, const fs::path& out, const nlohmann::ordered_json& cfg,
                        std::string_view command, const std::function<void(const fs::path& tmp)>& write_weights) {
  const fs::path folder = output_folder(out);
  check_output_folder(folder);
  // An existing (empty) folder is written into, never replaced: it may be a mount point, one whose
  // parent the user cannot write, or the working folder of the shell that runs us. The temporary
  // folder is then inside it, and its files are moved out when all are written; else it is
  // beside the new folder and renamed to it.
  std::error_code ec;
  const bool existing = fs::is_directory(folder, ec);
  const fs::path parent = existing ? folder : folder.parent_path();
  const std::string name = existing ? std::string("model") : folder.filename().string();
  if (!existing) fs::create_directories(parent);
  // A run killed with SIGKILL (the OOM killer) leaves its temporary folder, gigabytes for a 7B
  // model. Not removed here (another run to the same --out may be writing it): named.
  for (const auto& leftover : io::leftover_temporaries(parent, name))
    fmt::print(stderr, "warning: {} is what an interrupted {} to the same --out left; remove it (rm -r) to free its "
               "space\n", leftover.string(), command);
  const fs::path tmp = io::temporary_path_for(parent / name);
  const io::TempPath removed_if_interrupted(tmp, io::TempPath::Kind::kFlatFolder);
  fs::create_directories(tmp);
  std::vector<fs::path> moved;  // files already moved into an existing folder
  try {
    write_weights(tmp);
    // Tests: a SIGTERM half-way through the output (the temporary folder must not stay behind).
    if (std::getenv("AUTOTRAIN_TEST_SIGNAL_WHILE_WRITING")) ::raise(SIGTERM);
    io::write_file_atomic(tmp / "config.json", cfg.dump(2) + "\n");
    for (auto f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "generation_config.json"})
      if (fs::exists(source_dir / f)) copy_small_file(source_dir / f, tmp / f);
    // The remote code of legacy RefinedWeb checkpoints (configuration_RW.py, modelling_RW.py, named
    // by config.json's auto_map): without it trust_remote_code cannot build the model from `out`.
    for (const auto& f : remote_code_files(source_dir, cfg)) copy_small_file(source_dir / f, tmp / f);
    if (!existing) {
      fs::rename(tmp, folder);
      return;
    }
    // config.json last: until it is there, the folder is no model a loader would take.
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(tmp)) files.push_back(entry.path().filename());
    std::stable_partition(files.begin(), files.end(), [](const fs::path& f) { return f != "config.json"; });
    for (const auto& f : files) {
      fs::rename(tmp / f, folder / f);
      moved.push_back(folder / f);
    }
    fs::remove(tmp);
  } catch (...) {
    fs::remove_all(tmp, ec);
    for (const auto& f : moved) fs::remove(f, ec);
    throw;
  }
}

}  // namespace autotrain::model
