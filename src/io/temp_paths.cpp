#include "autotrain/io/temp_paths.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>

namespace autotrain::io {

namespace {

// Fixed storage: the handler cannot allocate. 64 slots is far more than the writes a command
// has in flight at once (a checkpoint folder and one file in it); a path that finds no slot is
// simply not tracked.
constexpr int kSlots = 64;
enum SlotState : int { kFree = 0, kClaimed = 1, kFile = 2, kFolder = 3 };

struct Slot {
  std::atomic<int> state{kFree};
  std::atomic<uint64_t> order{0};  // registration order: nested folders go innermost first
  // Odd while `path` is being written. A signal on one thread can read a slot that another thread
  // is freeing and filling again; a copy taken across a change would be two paths torn together,
  // which could name someone's file. The remover copies the path and keeps the copy only when
  // the generation was even and unchanged around it (a seqlock).
  std::atomic<uint64_t> generation{0};
  char path[PATH_MAX]{};
};
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<uint64_t>::is_always_lock_free,
              "the signal handler needs lock-free atomics");

Slot g_slots[kSlots];
std::atomic<uint64_t> g_next_order{1};

// Removes the entries directly inside `path` (unlinkat on each; a subfolder is left and makes
// the final rmdir fail, which is fine), then the folder. Entries removed while reading can move
// the others, so it reads again until a pass removes nothing.
void remove_flat_folder(const char* path) noexcept {
  const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    alignas(8) char buf[8192];
    for (int pass = 0; pass < 16; ++pass) {
      bool removed = false;
      ::lseek(fd, 0, SEEK_SET);
      ssize_t n;
      while ((n = ::getdents64(fd, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
          const auto* d = reinterpret_cast<const dirent64*>(buf + off);
          off += d->d_reclen;
          const char* name = d->d_name;
          if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
          if (::unlinkat(fd, name, 0) == 0) removed = true;
        }
      }
      if (!removed) break;
    }
    ::close(fd);
  }
  ::rmdir(path);
}

extern "C" void remove_then_die(int sig) {
  remove_temp_paths_now();
  // A batch log must say why the job stopped (the exit status alone is easy to miss).
  static const char kInt[] = "\nautotrain: stopped by SIGINT; files being written were removed (a partial download is kept, to "
                              "resume), finished ones kept\n";
  static const char kTerm[] = "\nautotrain: stopped by SIGTERM; files being written were removed (a partial download is kept, to "
                              "resume), finished ones kept\n";
  static const char kHup[] = "\nautotrain: stopped by SIGHUP; files being written were removed (a partial download is kept, to "
                              "resume), finished ones kept\n";
  const char* text = sig == SIGINT ? kInt : sig == SIGTERM ? kTerm : kHup;
  const size_t size = sig == SIGINT ? sizeof kInt - 1 : sig == SIGTERM ? sizeof kTerm - 1 : sizeof kHup - 1;
  (void)!::write(STDERR_FILENO, text, size);
  // Back to the default action, then raise again: the signal is blocked while this handler runs,
  // so it is delivered as soon as the handler returns and ends the process as it would have
  // (a shell sees 130 / 143, a parent sees WTERMSIG).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig);
}

// SIGUSR1's default action ends the process. Only `train` gives it a meaning (a checkpoint, and
// training goes on); a batch job asking for that with SLURM's `--signal=USR1@...` must not lose
// a `data` or `quantize` that happens to be running at the time.
extern "C" void note_and_ignore(int) {
  const int saved_errno = errno;  // the interrupted code may be about to read it
  static const char kUsr1[] = "\nautotrain: SIGUSR1 ignored (only train acts on it: it writes a checkpoint)\n";
  (void)!::write(STDERR_FILENO, kUsr1, sizeof kUsr1 - 1);
  errno = saved_errno;
}

// Installed over a default action only: a signal the process ignores (nohup) stays ignored, and a
// command with its own handler (train checkpoints on SIGTERM) keeps it. Checked at every
// registration (one system call) rather than once, so code that puts the default back, as a
// forked child may, does not leave later paths unprotected.
void install_handlers() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {  // SIGHUP: the terminal closed, the ssh session dropped
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) != 0) continue;
    if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
    struct sigaction sa {};
    sa.sa_handler = remove_then_die;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
  struct sigaction old {};
  if (::sigaction(SIGUSR1, nullptr, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
    struct sigaction sa {};
    sa.sa_handler = note_and_ignore;
    sa.sa_flags = SA_RESTART;  // the interrupted read or write goes on
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGUSR1, &sa, nullptr);
  }
}

}  // namespace

void install_signal_cleanup() { install_handlers(); }

std::filesystem::path temporary_path_for(const std::filesystem::path& path) {
  constexpr size_t kNameMax = 255, kExtra = 1 + 5 + 8;  // "." NAME ".tmp-" XXXXXXXX
  std::string name = path.filename().string();
  if (name.size() + kExtra > kNameMax) {
    size_t keep = kNameMax - kExtra;
    while (keep > 0 && (static_cast<unsigned char>(name[keep]) & 0xC0) == 0x80) --keep;  // not inside a character
    name.resize(keep);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  uint32_t r = rd();
  std::string tag(8, '0');
  for (int i = 7; i >= 0; --i, r >>= 4) tag[static_cast<size_t>(i)] = kHex[r & 0xF];
  const std::filesystem::path dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  return dir / ("." + name + ".tmp-" + tag);
}

TempPath::TempPath(const std::filesystem::path& path, Kind kind) {
  install_handlers();
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  const std::string& text = ec ? path.native() : absolute.native();
  if (text.empty() || text.size() >= PATH_MAX) return;
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (!g_slots[i].state.compare_exchange_strong(expected, kClaimed)) continue;
    g_slots[i].generation.fetch_add(1);  // odd: being written
    std::memcpy(g_slots[i].path, text.c_str(), text.size() + 1);
    g_slots[i].generation.fetch_add(1);
    g_slots[i].order.store(g_next_order.fetch_add(1));
    g_slots[i].state.store(kind == Kind::kFile ? kFile : kFolder);  // published last: the path is whole
    slot_ = i;
    return;
  }
}

TempPath::~TempPath() {
  if (slot_ >= 0) g_slots[slot_].state.store(kFree);
}

std::vector<std::filesystem::path> leftover_temporaries(const std::filesystem::path& dir, std::string_view name) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    // "." NAME ".tmp-" and 8 hex digits
    const size_t tag = file.rfind(".tmp-");
    if (file.size() < 15 || file[0] != '.' || tag == std::string::npos || tag < 2 || file.size() != tag + 13) continue;
    if (file.find_first_not_of("0123456789abcdef", tag + 5) != std::string::npos) continue;
    if (!name.empty() && std::string_view(file).substr(1, tag - 1) != name) continue;
    out.push_back(entry.path());
  }
  return out;
}

namespace {

// Copies slot `s`'s path into `out` when it holds a registration of `kind` that stayed whole
// while copied. memcpy is async-signal-safe (POSIX.1-2016).
bool copy_registered(const Slot& s, int kind, char (&out)[PATH_MAX]) noexcept {
  const uint64_t before = s.generation.load();
  if ((before & 1) != 0 || s.state.load() != kind) return false;
  std::memcpy(out, s.path, PATH_MAX);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  out[PATH_MAX - 1] = '\0';
  return s.generation.load() == before && s.state.load() == kind;
}

}  // namespace

void remove_temp_paths_now() noexcept {
  char path[PATH_MAX];
  for (auto& s : g_slots)
    if (copy_registered(s, kFile, path)) ::unlink(path);
  // Folders newest first, so a folder registered inside another goes before it.
  bool done[kSlots] = {};
  for (;;) {
    int pick = -1;
    for (int i = 0; i < kSlots; ++i)
      if (!done[i] && g_slots[i].state.load() == kFolder &&
          (pick < 0 || g_slots[i].order.load() > g_slots[pick].order.load()))
        pick = i;
    if (pick < 0) break;
    done[pick] = true;
    if (copy_registered(g_slots[pick], kFolder, path)) remove_flat_folder(path);
  }
}

}  // namespace autotrain::io
