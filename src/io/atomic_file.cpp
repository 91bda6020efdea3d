#include "autotrain/io/atomic_file.h"

#include "autotrain/io/temp_paths.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace autotrain::io {

namespace {
[[noreturn]] void fail(const std::filesystem::path& path, std::string_view what, int err) {
  throw std::runtime_error(fmt::format("cannot write {}: {}: {}", path.string(), what, std::strerror(err)));
}
}  // namespace

void write_file_atomic(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  const std::filesystem::path tmp = temporary_path_for(path);
  const TempPath removed_if_interrupted(tmp, TempPath::Kind::kFile);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) fail(path, "creating a temporary file", errno);
  // O_CREAT applies the umask; set the exact mode asked for.
  if (::fchmod(fd, mode) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, "setting permissions", err);
  }
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail(path, "writing", err);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail(path, "flushing", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail(path, "renaming into place", err);
  }
}

}  // namespace autotrain::io
