// Atomic files and the HF token on disk.
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "autotrain/io/atomic_file.h"
#include "autotrain/io/hf_token.h"
#include "autotrain/io/json_error.h"
#include "autotrain/io/json_text.h"
#include "autotrain/io/project_lock.h"
#include "autotrain/io/temp_paths.h"
#include "support/test_support.h"

namespace autotrain::io {
namespace {

using testing::TempDir;

TEST(AtomicFile, WritesReplacesAndLeavesNoTemporaries) {
  TempDir dir;
  auto p = dir.path() / "out.txt";
  write_file_atomic(p, "first");
  write_file_atomic(p, "second, longer");
  EXPECT_EQ(testing::read_file(p), "second, longer");
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u);
}

// A file name may have 255 bytes; the temporary beside it adds 14. A legal long DATA_FILE name
// (here 250 bytes, with a multi-byte character where the cut falls) must still be writable.
TEST(AtomicFile, ALongFileNameIsWritable) {
  TempDir dir;
  const std::string name = std::string(239, 'a') + "\xC3\xA9" + std::string(9, 'b');  // 250 bytes, "é" at 239
  write_file_atomic(dir.path() / name, "text\nx\n");
  EXPECT_EQ(testing::read_file(dir.path() / name), "text\nx\n");
  const auto tmp = temporary_path_for(dir.path() / name).filename().string();
  EXPECT_LE(tmp.size(), 255u);
  EXPECT_EQ(tmp.substr(0, 240), "." + std::string(239, 'a'));  // cut before the "é", not inside it
  EXPECT_EQ(leftover_temporaries(dir.path()).size(), 0u);
}

TEST(AtomicFile, ModeIsExactRegardlessOfUmask) {
  TempDir dir;
  auto p = dir.path() / "secret";
  mode_t old = umask(0);
  write_file_atomic(p, "x", 0600);
  umask(old);
  struct stat st {};
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST(AtomicFile, FailureNamesThePathAndKeepsTheOldFile) {
  TempDir dir;
  EXPECT_THROW(
      {
        try {
          write_file_atomic(dir.path() / "missing-dir" / "f", "x");
        } catch (const std::runtime_error& e) {
          EXPECT_NE(std::string(e.what()).find("missing-dir"), std::string::npos);
          throw;
        }
      },
      std::runtime_error);
}

TEST(JsonText, PositionOfAByte) {
  const std::string text = "ab\ncd\n\nef";
  auto at = [&](size_t offset) {
    auto p = position_of(text, offset);
    return std::to_string(p.line) + ":" + std::to_string(p.column);
  };
  EXPECT_EQ(at(0), "1:1");
  EXPECT_EQ(at(1), "1:2");
  EXPECT_EQ(at(2), "1:3");  // the newline ends its own line
  EXPECT_EQ(at(3), "2:1");
  EXPECT_EQ(at(7), "4:1");
  EXPECT_EQ(at(8), "4:2");
}

// nlohmann::json stops at a NUL byte as at the end of the input: without the check, this file
// would read as {"a": 1} and the damage after it would go unnoticed.
TEST(JsonText, ANulByteIsAParseErrorWhereItIs) {
  const std::string damaged = std::string("{\n  \"a\": 1\n}") + '\0' + "{\"b\": 2}";
  ASSERT_EQ(damaged.find('\0'), 12u);
  EXPECT_EQ(nlohmann::json::parse(damaged), nlohmann::json({{"a", 1}}));  // what the library alone does
  try {
    parse_json_text(damaged);
    ADD_FAILURE() << "a NUL byte was accepted";
  } catch (const nlohmann::json::parse_error& e) {
    EXPECT_EQ(e.byte, 13u);
    EXPECT_THAT(json_error_text(e), ::testing::StartsWith("parse error at line 3, column 2: a NUL byte"));
  }
  EXPECT_EQ(parse_json_text("{\"a\": \"\\u0000\"}")["a"].get<std::string>(), std::string(1, '\0'));
  EXPECT_EQ(parse_json_text<nlohmann::ordered_json>("{\"z\": 1, \"a\": 2}").begin().key(), "z");
  EXPECT_THROW(parse_json_text("{\"a\": 1} x"), nlohmann::json::parse_error);
}

TEST(HfToken, PathFollowsHuggingfaceHub) {
  EXPECT_EQ(hf_token_path({{"HF_HOME", "/x/hf"}, {"HOME", "/h"}}), "/x/hf/token");
  EXPECT_EQ(hf_token_path({{"XDG_CACHE_HOME", "/c"}, {"HOME", "/h"}}), "/c/huggingface/token");
  EXPECT_EQ(hf_token_path({{"HOME", "/h"}}), "/h/.cache/huggingface/token");
  // No HOME at all: the user database's home, as os.path.expanduser("~") gives.
  const passwd* pw = getpwuid(getuid());
  ASSERT_NE(pw, nullptr);
  EXPECT_EQ(hf_token_path({}), std::filesystem::path(pw->pw_dir) / ".cache" / "huggingface" / "token");
  // HF_TOKEN_PATH names the file itself (huggingface_hub reads the token there).
  EXPECT_EQ(hf_token_path({{"HF_TOKEN_PATH", "/t/tok"}, {"HF_HOME", "/x/hf"}}), "/t/tok");
}

// huggingface_hub expands a leading ~ (os.path.expanduser): HF_HOME='~/hfx' is $HOME/hfx, never
// a folder named '~' below the current one.
TEST(HfToken, PathExpandsALeadingTilde) {
  EXPECT_EQ(hf_token_path({{"HF_HOME", "~/hfx"}, {"HOME", "/h"}}), "/h/hfx/token");
  EXPECT_EQ(hf_token_path({{"HF_HOME", "~"}, {"HOME", "/h/"}}), "/h/token");
  EXPECT_EQ(hf_token_path({{"XDG_CACHE_HOME", "~/c"}, {"HOME", "/h"}}), "/h/c/huggingface/token");
  EXPECT_EQ(hf_token_path({{"HF_TOKEN_PATH", "~/t"}, {"HOME", "/h"}}), "/h/t");
  EXPECT_EQ(hf_token_path({{"HF_HOME", "x/~"}, {"HOME", "/h"}}), "x/~/token");
  const passwd* root = getpwnam("root");
  if (root) {
    EXPECT_EQ(hf_token_path({{"HF_HOME", "~root/hf"}, {"HOME", "/h"}}), std::filesystem::path(root->pw_dir) / "hf" / "token");
  }
  EXPECT_EQ(hf_token_path({{"HF_HOME", "~no-such-user-here/hf"}, {"HOME", "/h"}}), "~no-such-user-here/hf/token");
}

// Then variables, as os.path.expandvars: $NAME and ${NAME}; unknown ones and a lone $ stay.
TEST(HfToken, PathExpandsVariables) {
  EXPECT_EQ(hf_token_path({{"HF_HOME", "$SCRATCH/hf"}, {"SCRATCH", "/s"}}), "/s/hf/token");
  EXPECT_EQ(hf_token_path({{"HF_HOME", "${SCRATCH}x/$"}, {"SCRATCH", "/s"}}), "/sx/$/token");
  EXPECT_EQ(hf_token_path({{"HF_HOME", "$NOPE/hf"}, {"HOME", "/h"}}), "$NOPE/hf/token");
  EXPECT_EQ(hf_token_path({{"HF_HOME", "~/$U"}, {"HOME", "/h"}, {"U", "me"}}), "/h/me/token");
}

// Pasted tokens keep no surrounding blanks; what remains must look like a token.
TEST(HfToken, TrimAndProblems) {
  EXPECT_EQ(trim_token("  hf_abc\t\r\n"), "hf_abc");
  EXPECT_EQ(trim_token(" \n"), "");
  EXPECT_EQ(token_problem(""), "is empty");
  EXPECT_EQ(token_problem("hf_a b"), "contains whitespace or control characters");
  EXPECT_EQ(token_problem("hf_a\x01b"), "contains whitespace or control characters");
  EXPECT_FALSE(token_problem("hf_abc"));
}

TEST(HfToken, StoreCreatesPrivateFolderAndFile) {
  TempDir dir;
  auto p = dir.path() / "a" / "b" / "token";
  store_hf_token(p, "hf_abc");
  EXPECT_EQ(testing::read_file(p), "hf_abc");
  struct stat st {};
  ASSERT_EQ(stat(p.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700);
}

TEST(HfToken, MaskShowsAtMostTheLastFour) {
  EXPECT_EQ(mask_token("hf_abcdefghijklmnop1234"), "hf_…1234");
  EXPECT_EQ(mask_token("short"), "***");
  EXPECT_FALSE(plausible_token("hf_a b"));
  EXPECT_FALSE(plausible_token(""));
  EXPECT_TRUE(plausible_token("hf_abc"));
}

}  // namespace
// One process per project folder; the lock goes with the process that held it, even when it is
// killed (what a SLURM preemption or the OOM killer does).
// The lock file is never followed through a link (the pid would overwrite the link's target).
TEST(ProjectLock, ALinkOrFolderInPlaceOfTheLockIsRefused) {
  TempDir dir;
  const auto victim = dir.write("victim.txt", "precious\n");
  std::filesystem::create_directories(dir.path() / "p");
  std::filesystem::create_symlink(victim, dir.path() / "p" / ".autotrain.lock");
  try {
    ProjectLock lock(dir.path() / "p");
    ADD_FAILURE() << "locked through a link";
  } catch (const ProjectFolderError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("the project's lock file is a symbolic link; remove it"));
  }
  EXPECT_EQ(testing::read_file(victim), "precious\n");
}

// A run that fails before writing anything (the model not found) must not leave an empty project
// folder holding only the lock file; one that wrote something keeps it, and a folder that was
// there before is never removed.
TEST(ProjectLock, FoldersItCreatedGoAgainWhenNothingWasWritten) {
  TempDir dir;
  const auto project = dir.path() / "falcon-7b" / "finetune-admin";
  { ProjectLock lock(project); }
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "falcon-7b"));
  { ProjectLock lock(project.string() + "/"); }  // a trailing '/' names the same folders
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "falcon-7b"));
  {
    ProjectLock lock(project);
    std::ofstream(project / "metrics.jsonl") << "{}\n";
  }
  EXPECT_TRUE(std::filesystem::exists(project / "metrics.jsonl"));
  std::filesystem::remove(project / "metrics.jsonl");
  std::filesystem::remove(project / ProjectLock::kFileName);
  { ProjectLock lock(project); }  // existed before this lock: kept, as it was left
  EXPECT_TRUE(std::filesystem::is_directory(project));
}

TEST(ProjectLock, SecondHolderIsRefusedUntilTheFirstIsGone) {
  testing::TempDir dir;
  const auto project = dir.path() / "runs" / "p";
  {
    io::ProjectLock held(project);
    EXPECT_TRUE(std::filesystem::exists(project / io::ProjectLock::kFileName));
    try {
      io::ProjectLock again(project);
      ADD_FAILURE() << "a second lock on a held folder must be refused";
    } catch (const io::ProjectBusyError& e) {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      // The node too: on a shared file system the holder may run elsewhere.
      EXPECT_NE(std::string(e.what()).find("(pid " + std::to_string(getpid()) + " on " + host + ")"), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("AUTOTRAIN_PROJECT_NAME"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(io::ProjectLock after(project));

  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    io::ProjectLock in_child(project);
    char ok = 1;
    if (write(ready[1], &ok, 1) != 1) _exit(3);
    pause();
    _exit(0);
  }
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  EXPECT_THROW(io::ProjectLock busy(project), io::ProjectBusyError);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_NO_THROW(io::ProjectLock after_kill(project));
  close(ready[0]);
  close(ready[1]);

  // A link to a folder that is gone is named as such ("File exists" said nothing).
  std::filesystem::create_symlink(dir.path() / "gone", dir.path() / "link");
  try {
    io::ProjectLock dangling(dir.path() / "link");
    ADD_FAILURE() << "a dangling link is not a project folder";
  } catch (const io::ProjectFolderError& e) {
    EXPECT_NE(std::string(e.what()).find("is a link to " + (dir.path() / "gone").string() + ", which does not exist"),
              std::string::npos)
        << e.what();
  }
  // A folder that cannot be written (only checkable without root's override).
  if (geteuid() != 0) {
    std::filesystem::create_directories(dir.path() / "ro");
    std::filesystem::permissions(dir.path() / "ro", std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    try {
      io::ProjectLock read_only(dir.path() / "ro");
      ADD_FAILURE() << "a read-only folder cannot hold a run";
    } catch (const io::ProjectFolderError& e) {
      EXPECT_NE(std::string(e.what()).find("the project folder cannot be written"), std::string::npos) << e.what();
    }
    std::filesystem::permissions(dir.path() / "ro", std::filesystem::perms::owner_all);
  }

  // A path that cannot be a folder names the setting.
  dir.write("afile", "x");
  try {
    io::ProjectLock blocked(dir.path() / "afile");
    ADD_FAILURE() << "a file is not a project folder";
  } catch (const io::ProjectFolderError& e) {
    EXPECT_NE(std::string(e.what()).find("AUTOTRAIN_PROJECT_NAME"), std::string::npos) << e.what();
  }
}

// A SIGTERM (or Ctrl-C) that ends the process removes the temporary outputs it was writing: the
// files, and the folders with what is in them, more entries than one directory read returns.
// A path whose owner is done with it (renamed into place) is left alone. The process still dies
// of the signal, as a shell and SLURM expect.
TEST(TempPath, ASignalRemovesRegisteredPathsThenEndsTheProcess) {
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    testing::TempDir dir;
    const auto file = dir.path() / ".out.safetensors.tmp-1";
    const auto folder = dir.path() / ".out.tmp-2";
    const auto inner = folder / "inner.tmp";
    const auto kept = dir.path() / "kept.json";
    const auto log = dir.path() / "stderr.log";
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      signal(sig, SIG_DFL);  // as a fresh process has it
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, STDERR_FILENO);
      {
        io::TempPath done(kept, io::TempPath::Kind::kFile);
        std::ofstream(kept) << "renamed into place";
      }
      io::TempPath f(file, io::TempPath::Kind::kFile);
      std::ofstream(file) << "half";
      io::TempPath d(folder, io::TempPath::Kind::kFlatFolder);
      std::filesystem::create_directories(folder);
      for (int i = 0; i < 400; ++i)
        std::ofstream(folder / ("tensor-with-a-long-name-to-fill-the-read-buffer-" + std::to_string(i))) << i;
      io::TempPath nested(inner, io::TempPath::Kind::kFlatFolder);  // registered later: removed first
      std::filesystem::create_directories(inner);
      std::ofstream(inner / "x") << "x";
      raise(sig);
      _exit(0);  // not reached: the signal ends the process
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
    EXPECT_EQ(WTERMSIG(status), sig);
    EXPECT_FALSE(std::filesystem::exists(file));
    EXPECT_FALSE(std::filesystem::exists(folder)) << "the temporary folder stayed";
    EXPECT_TRUE(std::filesystem::exists(kept));
    // A batch log says why the job ended.
    EXPECT_THAT(testing::read_file(log), ::testing::HasSubstr(std::string("autotrain: stopped by ") +
                                                              (sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGHUP")));
  }
}

// A command with a handler of its own keeps it (train checkpoints on SIGTERM), and an atomic
// write in flight does not replace it.
// What kill -9 leaves: our temporaries by their name pattern, and nothing else.
TEST(TempPath, LeftoverTemporariesAreFoundByTheirName) {
  TempDir dir;
  dir.write(".train.safetensors.tmp-0a1b2c3d", "x");
  dir.write(".manifest.json.tmp-ffffffff", "x");
  std::filesystem::create_directories(dir.path() / ".qo.tmp-deadbeef");
  for (const char* other : {"train.safetensors", ".x.tmp-1234567", ".a.tmp-0a1b2c3g", ".tmp-01234567", "a.tmp-01234567",
                            ".b.tmp-012345678"})
    dir.write(other, "x");
  auto names = [](std::vector<std::filesystem::path> v) {
    std::vector<std::string> out;
    for (const auto& p : v) out.push_back(p.filename().string());
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(names(leftover_temporaries(dir.path())),
            (std::vector<std::string>{".manifest.json.tmp-ffffffff", ".qo.tmp-deadbeef", ".train.safetensors.tmp-0a1b2c3d"}));
  EXPECT_EQ(names(leftover_temporaries(dir.path(), "qo")), (std::vector<std::string>{".qo.tmp-deadbeef"}));
}

TEST(TempPath, AnInstalledHandlerIsKept) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    static volatile sig_atomic_t seen = 0;
    struct sigaction sa {};
    sa.sa_handler = [](int) { seen = 1; };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    testing::TempDir dir;
    io::TempPath f(dir.path() / "t", io::TempPath::Kind::kFile);
    io::write_file_atomic(dir.path() / "a.json", "{}");
    raise(SIGTERM);
    _exit(seen ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the process's own handler was replaced";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace autotrain::io

namespace autotrain::io {

// SLURM's --signal=USR1@... reaches whatever command the job is running; only train acts on it.
TEST(TempPath, SigUsr1DoesNotEndACommand) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGUSR1, &dfl, nullptr);
    install_signal_cleanup();
    raise(SIGUSR1);
    _exit(7);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "SIGUSR1 ended the process (signal " << WTERMSIG(status) << ")";
  EXPECT_EQ(WEXITSTATUS(status), 7);
}

}  // namespace autotrain::io
