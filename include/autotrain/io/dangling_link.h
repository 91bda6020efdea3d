// A symbolic link whose target is gone. Hugging Face cache snapshots hold links into blobs/, and
// an interrupted or pruned download leaves links to nothing: neither "no such file" nor a file to
// read, so callers say what it is.
#pragma once

#include <filesystem>
#include <optional>

namespace autotrain::io {

// The link's target when `path` is a link to nothing, else nullopt.
inline std::optional<std::filesystem::path> dangling_link_target(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_symlink(std::filesystem::symlink_status(path, ec)) || std::filesystem::exists(path, ec))
    return std::nullopt;
  return std::filesystem::read_symlink(path, ec);
}

}  // namespace autotrain::io
