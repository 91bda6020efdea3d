#include "autotrain/io/project_lock.h"

#include "autotrain/io/dangling_link.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace autotrain::io {

namespace fs = std::filesystem;

ProjectLock::ProjectLock(const fs::path& project) {
  std::error_code ec;
  // A link whose target is gone: create_directories says only "File exists".
  if (auto target = dangling_link_target(project))
    throw ProjectFolderError(fmt::format("AUTOTRAIN_PROJECT_NAME {}: is a link to {}, which does not exist; create "
                                         "that folder, remove the link, or set AUTOTRAIN_PROJECT_NAME to another "
                                         "folder",
                                         project.string(), target->string()));
  // The folders about to be created, deepest first, named without "a/b/" or "x/../" forms (whose
  // parent_path is not the folder above); a path through ".." is not tracked at all.
  fs::path normal = project.lexically_normal();
  if (!normal.has_filename()) normal = normal.parent_path();
  const bool through_dotdot = std::any_of(normal.begin(), normal.end(), [](const fs::path& c) { return c == ".."; });
  for (fs::path p = normal; !through_dotdot && !p.empty() && !fs::exists(fs::symlink_status(p, ec));
       p = p.parent_path()) {
    created_.push_back(p);
    if (p == p.parent_path()) break;
  }
  fs::create_directories(project, ec);
  if (ec)
    throw ProjectFolderError(fmt::format("AUTOTRAIN_PROJECT_NAME {}: cannot create the project folder ({}); set "
                                         "AUTOTRAIN_PROJECT_NAME to a folder that can be written",
                                         project.string(), ec.message()));
  const fs::path path = project / kFileName;
  // O_NOFOLLOW: the pid written into the lock must not land in whatever a link there points to.
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) {
    // The folder exists but cannot be written (read-only, another user's): nothing of the run
    // could be written there either.
    const int err = errno;
    if (err == EACCES || err == EROFS || err == EPERM)
      throw ProjectFolderError(fmt::format("AUTOTRAIN_PROJECT_NAME {}: the project folder cannot be written ({}); "
                                           "make it writable (chmod u+w), or set AUTOTRAIN_PROJECT_NAME to a folder "
                                           "you can write",
                                           project.string(), std::strerror(err)));
    if (err == ELOOP || err == EISDIR)
      throw ProjectFolderError(fmt::format("{}: the project's lock file is {}; remove it (autotrain makes a new one)",
                                           path.string(), err == ELOOP ? "a symbolic link" : "a folder"));
    throw std::runtime_error(fmt::format("{}: cannot open the project's lock file: {}", path.string(),
                                         std::strerror(err)));
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    char buf[300] = {};
    if (::pread(fd_, buf, sizeof buf - 1, 0) > 0) holder = std::string(buf).substr(0, std::string(buf).find('\n'));
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK) {
      // "PID HOST": on a shared file system the holder may run on another node.
      std::string who;
      if (!holder.empty()) {
        const size_t space = holder.find(' ');
        who = space == std::string::npos ? fmt::format(" (pid {})", holder)
                                         : fmt::format(" (pid {} on {})", holder.substr(0, space), holder.substr(space + 1));
      }
      throw ProjectBusyError(fmt::format(
          "{}: another autotrain process{} is using this project folder; wait for it to finish, or set "
          "AUTOTRAIN_PROJECT_NAME to another folder",
          project.string(), who));
    }
    throw std::runtime_error(fmt::format("{}: cannot lock it: {}", path.string(), std::strerror(err)));
  }
  // The holder's pid, for the message a second process prints (informational only: the lock
  // is the flock, not the file's contents).
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  const std::string pid = host[0] ? fmt::format("{} {}\n", ::getpid(), host) : fmt::format("{}\n", ::getpid());
  if (::ftruncate(fd_, 0) == 0) {
    ssize_t written = ::pwrite(fd_, pid.data(), pid.size(), 0);
    (void)written;
  }
}

ProjectLock::~ProjectLock() {
  if (fd_ >= 0 && !created_.empty()) {
    // Still held: no one else is inside. Only the lock file there means the run wrote nothing.
    std::error_code ec;
    bool only_lock = true;
    for (const auto& entry : fs::directory_iterator(created_.front(), ec))
      if (entry.path().filename() != kFileName) only_lock = false;
    if (!ec && only_lock) {
      fs::remove(created_.front() / kFileName, ec);
      for (const auto& dir : created_) {
        if (::rmdir(dir.c_str()) != 0) break;  // not empty: someone else's now, or ours with content
      }
    }
  }
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace autotrain::io
