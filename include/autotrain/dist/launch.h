// `autotrain launch`: starts one process per rank with torchrun's environment (RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT), forwards
// signals to them, and ends them all when one fails. No LibTorch.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace autotrain::dist {

class LaunchUsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The exit code of a process of a data-parallel run that stopped because another one failed
// (`train` on every rank but the failing one): the launcher reports the failing one's code.
constexpr int kExitAnotherProcessFailed = 3;

struct LaunchOptions {
  int nproc = 1;        // processes on this node
  int nnodes = 1;       // nodes in the run
  int node_rank = 0;    // this node's index
  std::string master_addr;  // rank 0's host; 127.0.0.1 on one node
  int master_port = 0;      // 0: a free port on one node, 29500 across nodes
  std::vector<std::string> command;  // an autotrain subcommand (`train ...`) or any program
  std::string self_exe;              // this program, for a command that is an autotrain subcommand
  // Seconds the other processes get to write a checkpoint and stop, after one failed or a
  // signal came, before they are killed.
  int grace_seconds = 60;
};

// Runs the command on nproc processes and returns the exit code: 0 when every process exits 0;
// else the first failure's (128 + signal for a process a signal ended), exits with
// kExitAnotherProcessFailed counting only when there is no other. Throws
// LaunchUsageError for options that cannot run.
int run_launch(const LaunchOptions& options);

// Whether `word` names an autotrain subcommand that `launch` runs with this program.
bool is_autotrain_subcommand(const std::string& word);

}  // namespace autotrain::dist
