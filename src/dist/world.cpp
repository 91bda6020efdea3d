// The launcher's environment, read once at the start of a run (see world.h).
#include "autotrain/dist/world.h"

#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

namespace autotrain::dist {

std::optional<std::string> process_env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

namespace {

// A whole non-negative decimal number, else WorldError naming the variable.
int read_count(const EnvLookup& env, const std::string& name, const std::string& why) {
  const auto v = env(name);
  if (!v) throw WorldError(fmt::format("{} is not set: {}", name, why));
  const std::string& s = *v;
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
    throw WorldError(fmt::format("{}={} is not a whole number (0 or more): {}", name, s, why));
  return std::atoi(s.c_str());
}

std::optional<int> read_optional_count(const EnvLookup& env, const std::string& name, const std::string& why) {
  const auto v = env(name);
  if (!v || v->empty()) return std::nullopt;
  return read_count(env, name, why);
}

void check_ranks(WorldInfo& w, const char* rank_name, const char* size_name) {
  if (w.world_size < 1) throw WorldError(fmt::format("{}=0: a run needs at least one process", size_name));
  if (w.rank >= w.world_size)
    throw WorldError(fmt::format("{}={} is outside the world of {}={} processes (ranks 0 to {})", rank_name, w.rank,
                                 size_name, w.world_size, w.world_size - 1));
  if (w.local_world_size < 1) w.local_world_size = 1;
}

WorldInfo from_torchrun(const EnvLookup& env) {
  const std::string why = "torchrun and `autotrain launch` set it for every process of a run";
  WorldInfo w;
  w.source = "torchrun variables";
  w.rank = read_count(env, "RANK", why);
  w.world_size = read_count(env, "WORLD_SIZE", why);
  w.local_rank = read_optional_count(env, "LOCAL_RANK", why).value_or(w.rank);
  w.local_world_size = read_optional_count(env, "LOCAL_WORLD_SIZE", why).value_or(w.world_size);
  check_ranks(w, "RANK", "WORLD_SIZE");
  if (w.local_rank >= w.local_world_size)
    throw WorldError(fmt::format("LOCAL_RANK={} is outside LOCAL_WORLD_SIZE={}", w.local_rank, w.local_world_size));
  if (w.world_size > 1) {
    const auto addr = env("MASTER_ADDR");
    if (!addr || addr->empty())
      throw WorldError("MASTER_ADDR is not set beside RANK and WORLD_SIZE: set it to the host of rank 0 (or start "
                       "the processes with `autotrain launch`)");
    w.master_addr = *addr;
    w.master_port = read_count(env, "MASTER_PORT", "set it to a free TCP port on the host of rank 0");
    if (w.master_port < 1 || w.master_port > 65535)
      throw WorldError(fmt::format("MASTER_PORT={} is not a TCP port (1 to 65535)", w.master_port));
    if (const auto agent = env("TORCHELASTIC_USE_AGENT_STORE"); agent && (*agent == "True" || *agent == "true")) {
      w.agent_store = true;
      w.source = "torchrun";
      w.key_prefix = fmt::format("autotrain/{}/{}/", env("TORCHELASTIC_RUN_ID").value_or("none"),
                                 env("TORCHELASTIC_RESTART_COUNT").value_or("0"));
    }
  }
  return w;
}

// srun sets SLURM_STEP_NUM_TASKS for the tasks it starts; a batch script run without srun has
// only the allocation's SLURM_NTASKS, and must not wait for tasks nobody started.
std::optional<WorldInfo> from_slurm(const EnvLookup& env) {
  const auto tasks = env("SLURM_STEP_NUM_TASKS");
  if (!tasks || tasks->empty()) return std::nullopt;
  const std::string why = "srun sets it for every task of a job step";
  WorldInfo w;
  w.source = "SLURM (srun)";
  w.world_size = read_count(env, "SLURM_STEP_NUM_TASKS", why);
  if (w.world_size <= 1) return std::nullopt;
  w.rank = read_count(env, "SLURM_PROCID", why);
  w.local_rank = read_optional_count(env, "SLURM_LOCALID", why).value_or(0);
  // "4(x2)" or "2,1": the tasks on each node; this node's count bounds LOCAL_RANK.
  if (const auto per_node = env("SLURM_STEP_TASKS_PER_NODE"); per_node && !per_node->empty()) {
    const size_t digits = per_node->find_first_not_of("0123456789");
    if (digits != 0) w.local_world_size = std::atoi(per_node->substr(0, digits).c_str());
  }
  if (w.local_world_size <= w.local_rank) w.local_world_size = w.local_rank + 1;
  check_ranks(w, "SLURM_PROCID", "SLURM_STEP_NUM_TASKS");
  if (const auto addr = env("MASTER_ADDR"); addr && !addr->empty()) {
    w.master_addr = *addr;
  } else {
    const auto nodes = env("SLURM_STEP_NODELIST") ? env("SLURM_STEP_NODELIST") : env("SLURM_JOB_NODELIST");
    if (!nodes || nodes->empty())
      throw WorldError("SLURM_JOB_NODELIST is not set: set MASTER_ADDR to the host of rank 0");
    w.master_addr = first_slurm_host(*nodes);
  }
  if (const auto port = read_optional_count(env, "MASTER_PORT", "set it to a free TCP port on the host of rank 0")) {
    w.master_port = *port;
  } else {
    // One port per job, so that two jobs sharing a node do not meet at the same one; below
    // Linux's ephemeral ports (32768 and up), which outgoing connections take.
    const int job = read_optional_count(env, "SLURM_JOB_ID", why).value_or(0);
    w.master_port = 15000 + job % 15000;
  }
  if (w.master_port < 1 || w.master_port > 65535)
    throw WorldError(fmt::format("MASTER_PORT={} is not a TCP port (1 to 65535)", w.master_port));
  return w;
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // The first entry: up to the first comma outside brackets.
  std::string first;
  int depth = 0;
  for (char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == ',' && depth == 0) break;
    first += c;
  }
  const size_t open = first.find('[');
  if (open == std::string::npos) return first;
  // "gpu[07-09,12]": the prefix and the range's first number, its zero padding kept.
  const std::string prefix = first.substr(0, open);
  const std::string inside = first.substr(open + 1, first.find_first_of("-,]", open + 1) - open - 1);
  if (inside.empty() || inside.find_first_not_of("0123456789") != std::string::npos)
    throw WorldError(fmt::format("cannot read the SLURM node list {}: set MASTER_ADDR to the host of rank 0", nodelist));
  const size_t close = first.find(']', open);
  const std::string suffix = close == std::string::npos ? std::string() : first.substr(close + 1);
  return prefix + inside + suffix;
}

WorldInfo detect_world(const EnvLookup& env) {
  const auto rank = env("RANK"), size = env("WORLD_SIZE");
  if ((rank && !rank->empty()) || (size && !size->empty())) return from_torchrun(env);
  if (auto slurm = from_slurm(env)) return *slurm;
  return WorldInfo{};
}

}  // namespace autotrain::dist
