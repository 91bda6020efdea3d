#include "autotrain/safetensors/checkpoint.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autotrain/io/json_text.h"
#include "autotrain/safetensors/header.h"
#include "autotrain/io/dangling_link.h"
#include "autotrain/io/json_error.h"

namespace autotrain::safetensors {

namespace {

void refuse_dangling_link(const std::filesystem::path& p) {
  if (auto target = io::dangling_link_target(p))
    throw SafetensorsError(fmt::format("{} is a link to {}, which does not exist: the download is incomplete; download "
                                       "the model again",
                                       p.string(), target->string()));
}

}  // namespace

CheckpointFiles find_checkpoint(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  CheckpointFiles out;
  fs::path index = dir / "model.safetensors.index.json";
  refuse_dangling_link(index);
  refuse_dangling_link(dir / "model.safetensors");
  if (fs::exists(index)) {
    std::ifstream in(index, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) throw SafetensorsError(fmt::format("cannot read {}", index.string()));
    nlohmann::json j;
    try {
      j = io::parse_json_text(ss.str());
    } catch (const nlohmann::json::exception& e) {
      throw SafetensorsError(fmt::format("{}: not valid JSON: {}", index.string(), io::json_error_text(e)));
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw SafetensorsError(
          fmt::format("{}: expected an object with \"weight_map\": {{tensor: shard file}}", index.string()));
    std::map<std::string, size_t> shard_ids;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string())
        throw SafetensorsError(
            fmt::format("{}: weight_map entry '{}' must be a file name (string)", index.string(), name));
      const std::string& f = file.get_ref<const std::string&>();
      // A shard is a plain file name in the same folder: never let an index point elsewhere.
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
        throw SafetensorsError(fmt::format("{}: weight_map entry '{}' names '{}', which is not a file name in the "
                                           "model folder",
                                           index.string(), name, f));
      auto [it, added] = shard_ids.emplace(f, out.shards.size());
      if (added) {
        refuse_dangling_link(dir / f);
        if (!fs::exists(dir / f))
          throw SafetensorsError(fmt::format("{}: shard '{}' (holding '{}') does not exist in {}; the download is "
                                             "incomplete",
                                             index.string(), f, name, dir.string()));
        out.shards.push_back(dir / f);
      }
      out.shard_of[name] = it->second;
    }
    if (out.shards.empty()) throw SafetensorsError(fmt::format("{}: weight_map is empty", index.string()));
    out.index = index;
    return out;
  }
  if (fs::exists(dir / "model.safetensors")) {
    out.shards.push_back(dir / "model.safetensors");
    return out;
  }
  std::string hint = "save the model with safetensors (save_pretrained(..., safe_serialization=True))";
  if (fs::exists(dir / "pytorch_model.bin") || fs::exists(dir / "pytorch_model.bin.index.json"))
    hint = "this folder has only a pickle checkpoint (pytorch_model.bin), which is not supported: convert it with "
           "transformers: AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)";
  throw SafetensorsError(fmt::format("{}: no model.safetensors or model.safetensors.index.json; {}", dir.string(), hint));
}

}  // namespace autotrain::safetensors
