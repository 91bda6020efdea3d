// Which process of a data-parallel run this one is, read from the launcher's environment:
// torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
// as `autotrain launch` and torchrun set them) or, without them, SLURM's for a task that srun
// started (SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID, SLURM_STEP_TASKS_PER_NODE,
// SLURM_JOB_NODELIST, SLURM_JOB_ID). No LibTorch.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace autotrain::dist {

// A launcher environment that cannot be right (a usage error: exit 2).
class WorldError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct WorldInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "single process";  // "torchrun variables", "SLURM (srun)": for messages
  // torchrun's agent hosts a store at MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE):
  // every rank joins it as a client, under a key prefix of this run and restart.
  bool agent_store = false;
  std::string key_prefix;

  bool distributed() const { return world_size > 1; }
  bool lead() const { return rank == 0; }
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// The process's own environment.
std::optional<std::string> process_env(const std::string& name);

// Reads the world from `env`. A single process when neither launcher's variables are there (or
// they describe one process). Throws WorldError for values that are not numbers, a rank outside
// the world, or a missing MASTER_ADDR/MASTER_PORT beside RANK/WORLD_SIZE, naming the variable.
WorldInfo detect_world(const EnvLookup& env = process_env);

// The first host name of a SLURM node list ("gpu[07-09,12],cpu1" -> "gpu07"): where rank 0 runs.
std::string first_slurm_host(const std::string& nodelist);

}  // namespace autotrain::dist
