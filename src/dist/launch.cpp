// `autotrain launch` (see launch.h): fork/exec per rank, signals forwarded, first failure wins.
#include "autotrain/dist/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fmt/format.h>

namespace autotrain::dist {

namespace {

// The children, for the signal handler (async-signal-safe: a fixed array of atomics).
constexpr int kMaxChildren = 1024;
std::atomic<pid_t> g_children[kMaxChildren];
std::atomic<int> g_child_count{0};
// A stop request (SIGINT, SIGTERM, SIGHUP) passed on to the children (SIGUSR1 asks for a
// checkpoint and training goes on).
std::atomic<bool> g_stop_forwarded{false};

// A child and what it started (`sh -c "..."` wrappers): its process group. Async-signal-safe.
void signal_child(pid_t pid, int sig) {
  if (::kill(-pid, sig) != 0) ::kill(pid, sig);  // not yet in its own group (just forked)
}

extern "C" void forward_signal(int sig) {
  const int saved = errno;
  if (sig != SIGUSR1) g_stop_forwarded.store(true);
  const int n = g_child_count.load();
  for (int i = 0; i < n; ++i)
    if (const pid_t pid = g_children[i].load(); pid > 0) signal_child(pid, sig);
  errno = saved;
}

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};

// A TCP port nobody listens on now (the kernel's choice): one-node runs need no --master-port,
// and two runs on one machine do not meet.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 29500;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 29500;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// Whether execvp would find `program`: a path that can be executed, or a name found on PATH.
bool runnable(const std::string& program) {
  if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t from = 0;
  while (from <= dirs.size()) {
    const size_t to = std::min(dirs.find(':', from), dirs.size());
    const std::string dir = to > from ? dirs.substr(from, to - from) : ".";
    if (::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
    from = to + 1;
  }
  return false;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

bool is_autotrain_subcommand(const std::string& word) {
  // (All of them, so that `launch -- data` is refused rather than run as a program named data.)
  static const char* const kNames[] = {"setup", "config", "data",     "train", "tiny",  "eval",
                                       "tokenize", "quantize", "merge", "generate", "chat"};
  for (const char* n : kNames)
    if (word == n) return true;
  return false;
}

int run_launch(const LaunchOptions& o) {
  if (o.nproc < 1 || o.nproc > kMaxChildren)
    throw LaunchUsageError(fmt::format("--nproc {}: give 1 to {} processes per node (one per GPU)", o.nproc, kMaxChildren));
  if (o.nnodes < 1) throw LaunchUsageError(fmt::format("--nnodes {}: give 1 or more nodes", o.nnodes));
  if (o.node_rank < 0 || o.node_rank >= o.nnodes)
    throw LaunchUsageError(fmt::format("--node-rank {} is outside the {} node{} of --nnodes (0 to {})", o.node_rank,
                                       o.nnodes, o.nnodes == 1 ? "" : "s", o.nnodes - 1));
  if (o.command.empty())
    throw LaunchUsageError("no command to launch: give it after --, e.g. autotrain launch --nproc 2 -- train -c falcon.env");
  if (o.command.front() == "launch")
    throw LaunchUsageError("launch -- launch: give the command to run (train ...) after the first --");
  if (is_autotrain_subcommand(o.command.front()) && o.command.front() != "train")
    throw LaunchUsageError(fmt::format("autotrain {} runs on one process: launch runs `train` data-parallel (the "
                                       "copies of any other command would write the same files)",
                                       o.command.front()));
  if (o.nnodes > 1 && o.master_addr.empty())
    throw LaunchUsageError("--nnodes > 1 needs --master-addr: the host of node 0, which every node can reach");
  if (o.master_port < 0 || o.master_port > 65535)
    throw LaunchUsageError(fmt::format("--master-port {} is not a TCP port (1 to 65535)", o.master_port));
  if (!is_autotrain_subcommand(o.command.front()) && !runnable(o.command.front())) {
    fmt::print(stderr, "launch: cannot run {}: no such program (a path, or a name on PATH)\n", o.command.front());
    return 127;  // as a shell says it
  }
  const std::string addr = o.master_addr.empty() ? "127.0.0.1" : o.master_addr;
  const int port = o.master_port > 0 ? o.master_port : o.nnodes == 1 ? free_port() : 29500;
  const int world = o.nproc * o.nnodes;

  std::vector<std::string> argv_words = o.command;
  if (is_autotrain_subcommand(argv_words.front()) && !o.self_exe.empty())
    argv_words.insert(argv_words.begin(), o.self_exe);

  // Each process gets its share of the cores, unless the caller chose (LibTorch would otherwise
  // start one thread per core in every process, and they would fight over the cores).
  std::string threads_note;
  std::string omp_threads;
  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    omp_threads = std::to_string(std::max(1u, cores / static_cast<unsigned>(o.nproc)));
    threads_note = fmt::format(", OMP_NUM_THREADS={} each (set it to choose)", omp_threads);
  }
  fmt::print(stderr, "launch: {} process{} on this node (ranks {}-{} of {}), rendezvous {}:{}{}\n", o.nproc,
             o.nproc == 1 ? "" : "es", o.node_rank * o.nproc, o.node_rank * o.nproc + o.nproc - 1, world, addr, port,
             threads_note);

  struct sigaction fwd {}, old[std::size(kForwarded)];
  fwd.sa_handler = forward_signal;
  sigemptyset(&fwd.sa_mask);
  fwd.sa_flags = SA_RESTART;
  // A signal the launcher was started with ignored (nohup) stays ignored, for it and the processes.
  for (size_t i = 0; i < std::size(kForwarded); ++i) {
    ::sigaction(kForwarded[i], nullptr, &old[i]);
    if (old[i].sa_handler != SIG_IGN) ::sigaction(kForwarded[i], &fwd, nullptr);
  }
  // Held back while a process is being started: one that comes then reaches it (and the others)
  // once its pid is known, and never runs the launcher's handler in the child.
  sigset_t forwarded, before;
  sigemptyset(&forwarded);
  for (int sig : kForwarded) sigaddset(&forwarded, sig);
  g_child_count.store(0);
  g_stop_forwarded.store(false);
  // The children's exit codes are the result: a SIGCHLD inherited as ignored would have the
  // kernel reap them unseen.
  struct sigaction child_default {}, old_child {};
  child_default.sa_handler = SIG_DFL;
  sigemptyset(&child_default.sa_mask);
  ::sigaction(SIGCHLD, &child_default, &old_child);

  std::vector<pid_t> pids;
  const pid_t launcher = ::getpid();
  for (int local = 0; local < o.nproc; ++local) {
    ::sigprocmask(SIG_BLOCK, &forwarded, &before);
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::sigprocmask(SIG_SETMASK, &before, nullptr);
      forward_signal(SIGTERM);  // the ones started so far
      throw std::runtime_error(fmt::format("launch: cannot start process {}: {}", local, std::strerror(errno)));
    }
    if (pid == 0) {
      // A process group of its own: a signal reaches it once, from here (the terminal's Ctrl-C
      // comes to the launcher, which passes it on); and SIGTERM when the launcher dies.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != launcher) ::_exit(143);  // the launcher went before prctl took effect
      for (size_t i = 0; i < std::size(kForwarded); ++i) ::sigaction(kForwarded[i], &old[i], nullptr);
      ::sigprocmask(SIG_SETMASK, &before, nullptr);
      const int rank = o.node_rank * o.nproc + local;
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(local).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("GROUP_RANK", std::to_string(o.node_rank).c_str(), 1);
      ::setenv("MASTER_ADDR", addr.c_str(), 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      if (!omp_threads.empty()) ::setenv("OMP_NUM_THREADS", omp_threads.c_str(), 1);
      std::vector<char*> args;
      for (auto& w : argv_words) args.push_back(w.data());
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      const std::string msg = fmt::format("launch: cannot run {}: {}\n", argv_words.front(), std::strerror(errno));
      (void)!::write(STDERR_FILENO, msg.data(), msg.size());
      ::_exit(127);
    }
    ::setpgid(pid, pid);  // as the child does: whichever runs first, the group exists before a signal
    pids.push_back(pid);
    g_children[local].store(pid);
    g_child_count.store(local + 1);
    ::sigprocmask(SIG_SETMASK, &before, nullptr);
  }

  // The first process to fail decides the exit code. The others usually learn of it from the
  // failed rank itself and end within moments; those still running after kTermDelay are asked to
  // stop (SIGTERM: a training run writes a checkpoint first) and killed after the grace period.
  using Clock = std::chrono::steady_clock;
  constexpr auto kTermDelay = std::chrono::seconds(3);
  int result = 0, fallback = 0;
  int term_signal = SIGTERM;
  int alive = o.nproc;
  constexpr auto kNever = Clock::time_point::max();
  Clock::time_point term_at = kNever, kill_at = kNever;
  auto signal_all = [&](int sig) {
    for (int i = 0; i < o.nproc; ++i)
      if (const pid_t p = g_children[i].load(); p > 0) signal_child(p, sig);
  };
  while (alive > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, term_at != kNever || kill_at != kNever ? WNOHANG : 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      fmt::print(stderr, "launch: lost track of {} process{}: {}\n", alive, alive == 1 ? "" : "es", std::strerror(errno));
      if (result == 0) result = 1;
      break;
    }
    if (pid == 0) {  // none ended yet: a deadline may have come
      const auto now = Clock::now();
      if (now >= term_at) {
        term_at = kNever;
        if (!g_stop_forwarded.load()) signal_all(term_signal);
        kill_at = now + std::chrono::seconds(o.grace_seconds);
      } else if (now >= kill_at) {
        fmt::print(stderr, "launch: {} process{} still running {} s after being asked to stop: killing\n", alive,
                   alive == 1 ? "" : "es", o.grace_seconds);
        signal_all(SIGKILL);
        kill_at = kNever;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    int local = -1;
    for (int i = 0; i < o.nproc; ++i)
      if (pids[static_cast<size_t>(i)] == pid) local = i;
    if (local < 0) continue;
    g_children[local].store(0);
    --alive;
    const int code = exit_code_of(status);
    if (code == 0) continue;
    const bool first_failure = result == 0 && fallback == 0;
    if (code == kExitAnotherProcessFailed) {
      // It stopped because another failed: that one is the cause, whenever it ends.
      fallback = code;
    } else if (result == 0) {
      result = code;
      // 129/130/143: a run that stopped on SIGHUP/SIGINT/SIGTERM after a checkpoint; the other
      // ranks stop at the same step (they agree on signals), so they are only given the time.
      const bool stopped_on_signal = code == 128 + SIGHUP || code == 128 + SIGINT || code == 128 + SIGTERM;
      if (!stopped_on_signal && !g_stop_forwarded.load())
        fmt::print(stderr, "launch: rank {} exited with {}{}\n", o.node_rank * o.nproc + local, code,
                   alive > 0 ? fmt::format("; stopping the other {} process{}", alive, alive == 1 ? "" : "es")
                             : std::string());
    }
    if (first_failure && alive > 0) {
      if (g_stop_forwarded.load()) {
        kill_at = Clock::now() + std::chrono::seconds(o.grace_seconds);
      } else {
        // Those still running after kTermDelay get SIGTERM; or, when that process stopped on a
        // signal that reached it alone (they would have ended with it otherwise: they agree on
        // signals), that signal, so that they stop as it did.
        const bool stopped_on_signal = code == 128 + SIGHUP || code == 128 + SIGINT || code == 128 + SIGTERM;
        term_signal = stopped_on_signal ? code - 128 : SIGTERM;
        term_at = Clock::now() + kTermDelay;
      }
    }
  }
  if (result == 0) result = fallback;
  g_child_count.store(0);
  for (size_t i = 0; i < std::size(kForwarded); ++i) ::sigaction(kForwarded[i], &old[i], nullptr);
  ::sigaction(SIGCHLD, &old_child, nullptr);
  return result;
}

}  // namespace autotrain::dist
