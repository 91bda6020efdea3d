// Writing a new Hugging Face model folder made from a source folder (`autotrain quantize`,
// `autotrain merge`): the checks on --out, the source's files that travel with the weights
// (tokenizer, generation config, remote code), and a temporary folder renamed when complete, so
// that an interrupted command leaves no half-written model behind. No LibTorch here.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace autotrain::model {

// The folder --out names, made absolute: "newdir/" and "./x/." name the folder itself (an empty
// filename() put the temporary folder inside the output), and a symbolic link names its target.
std::filesystem::path output_folder(const std::filesystem::path& out);

// The output must be a new or an empty folder: anything else would be replaced. Throws
// std::invalid_argument (a command-line mistake) naming --out.
void check_output_folder(const std::filesystem::path& folder);

// A JSON file with its keys in file order (config.json keeps its layout when rewritten). Throws
// ModelError when it cannot be read or parsed.
nlohmann::ordered_json read_ordered_json(const std::filesystem::path& path);

// The *.py files a trust_remote_code checkpoint needs from `source_dir` (every top-level one),
// after checking that each module config.json's auto_map names locally is among them. Throws
// ModelError when one is missing (the written folder could not be loaded with trust_remote_code).
std::vector<std::string> remote_code_files(const std::filesystem::path& source_dir, const nlohmann::ordered_json& cfg);

// Sets the dtype a written config.json declares: "dtype" as transformers 5 writes (and reads
// first), "torch_dtype" too when the source had it (what transformers 4 reads), so both agree.
void set_config_dtype(nlohmann::ordered_json& cfg, const std::string& dtype_name);

// Writes a model folder at `out` (checked with check_output_folder): `write_weights(tmp)` puts the
// weights into a temporary folder, then `cfg` becomes config.json and the source's tokenizer,
// generation config and remote-code files are copied; when all are written the temporary folder
// is renamed to `out`, or, when `out` is an existing empty folder (a mount point, the working
// folder), its files are moved into it, config.json last; on any failure nothing is left.
// `command` ("quantize", "merge") names the command in the warning about temporary folders an
// earlier, killed run left.
void write_model_folder(const std::filesystem::path& source_dir, const std::filesystem::path& out,
                        const nlohmann::ordered_json& cfg, std::string_view command,
                        const std::function<void(const std::filesystem::path& tmp)>& write_weights);

}  // namespace autotrain::model
