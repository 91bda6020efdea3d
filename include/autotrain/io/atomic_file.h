// Files that are either complete or absent: written to a temporary name in the same folder,
// flushed, then renamed over the target.
#pragma once

#include <filesystem>
#include <string_view>
#include <sys/types.h>

namespace autotrain::io {

// Writes `data` to `path` atomically with permission bits `mode` (the temporary file is
// created with that mode, so a secret is never readable by others, even briefly).
// Throws std::runtime_error naming the path and the reason.
void write_file_atomic(const std::filesystem::path& path, std::string_view data, mode_t mode = 0644);

}  // namespace autotrain::io
