// One process at a time in a project folder: `data` and `train` hold an exclusive lock on
// <project>/.autotrain.lock while they run, so two jobs given the same config (a SLURM array, a
// resubmitted job while the first still runs) cannot interleave their checkpoints, token cache
// and adapter. The lock is flock(2): the kernel drops it when the process ends, however it
// ends (SIGKILL, a node's OOM killer), so a stale lock file never blocks the next run.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <vector>

namespace autotrain::io {

// The folder is held by another process: the message names it and that process's pid.
class ProjectBusyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The project folder cannot be created (a file of that name, no permission): the config's
// AUTOTRAIN_PROJECT_NAME needs changing, so commands report it as a usage error.
class ProjectFolderError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ProjectLock {
 public:
  // Creates `project` if needed and takes the lock without waiting. Folders it created are
  // removed again when the lock goes while they hold nothing but the lock file: a run that
  // failed before writing anything (a missing model, a bad data file) leaves no empty project
  // folder behind. Throws ProjectBusyError
  // when another process holds it, ProjectFolderError when the folder cannot be created, and
  // std::runtime_error when the lock file cannot be opened or locked.
  explicit ProjectLock(const std::filesystem::path& project);
  ~ProjectLock();
  ProjectLock(const ProjectLock&) = delete;
  ProjectLock& operator=(const ProjectLock&) = delete;

  static constexpr const char* kFileName = ".autotrain.lock";

 private:
  int fd_ = -1;
  std::vector<std::filesystem::path> created_;  // folders this lock created, the project first
};

}  // namespace autotrain::io
