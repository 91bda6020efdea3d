// Temporary files and folders that an interrupted command must not leave behind.
//
// Outputs are written under a temporary name and renamed when complete, so a crash never leaves
// half a file under the real name; but a Ctrl-C or a SIGTERM (SLURM, `timeout`) kills the
// process before any destructor runs, and the temporary file stays: a hidden 4 GB
// `.out.tmp-1a2b3c4d` beside a quantized checkpoint. While a TempPath is alive, a SIGINT,
// SIGTERM or SIGHUP (a closed terminal) whose action is the default (end the process) first
// removes it, then ends the process as that signal would (exit status 130 / 143 / 129 in a shell).
//
// The signal handler may only make async-signal-safe calls, so paths live in fixed storage and
// are removed with unlink, unlinkat and rmdir. A folder is removed with the files directly in it
// (our temporary folders are flat).
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

namespace autotrain::io {

class TempPath {
 public:
  enum class Kind { kFile, kFlatFolder };

  // Registers `path` for removal if a signal ends the process. Does not create anything.
  TempPath(const std::filesystem::path& path, Kind kind);
  // Unregisters; never deletes (the owner has renamed the path into place, or removed it).
  ~TempPath();
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;

 private:
  int slot_ = -1;  // -1: not tracked (every slot in use, or a path longer than PATH_MAX)
};

// The temporary name beside `path` that an atomic write uses: ".NAME.tmp-XXXXXXXX" (random hex),
// NAME cut (at a UTF-8 character boundary) so the whole name stays within the 255 bytes a file
// name may have: a legal 250-byte DATA_FILE name must still be writable.
std::filesystem::path temporary_path_for(const std::filesystem::path& path);

// What a SIGKILL (the OOM killer, `kill -9`, a node failure) leaves, which no handler can remove:
// the temporaries directly in `dir`, named ".NAME.tmp-XXXXXXXX" as our atomic writes name them
// (any NAME when `name` is empty). Only a caller that knows no one is writing there (it holds the
// project lock) may remove them.
std::vector<std::filesystem::path> leftover_temporaries(const std::filesystem::path& dir, std::string_view name = {});

// Installs the removing handler now (where SIGINT/SIGTERM/SIGHUP still have their default action),
// rather than at the first registration: so a signal at any point of a command prints why it
// stopped. Commands call it at start.
void install_signal_cleanup();

// Removes every registered path now. Async-signal-safe: for handlers that end the process
// themselves (train's second Ctrl-C), before they call _exit.
void remove_temp_paths_now() noexcept;

}  // namespace autotrain::io
