// autotrain launch --nproc N [--nnodes K --node-rank R --master-addr H --master-port P] -- CMD...:
// argument parsing only; the launcher is autotrain/dist/launch.h.
#include <unistd.h>

#include <climits>
#include <filesystem>

#include <fmt/format.h>

#include "autotrain/dist/launch.h"
#include "common.h"

namespace autotrain::cli {

namespace {

// This program's own path, for `launch -- train ...` (argv[0] may be a bare name found on PATH).
std::string self_executable() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.string();
}

}  // namespace

Subcommand add_launch_command(CLI::App& app, GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand(
      "launch", "Run a command on several processes (torchrun conventions): data-parallel training");
  auto o = std::make_shared<dist::LaunchOptions>();
  sub->add_option("--nproc,--nproc-per-node", o->nproc, "Processes on this node: one per GPU (default 1)")
      ->transform(positive_integer("2"));
  sub->add_option("--nnodes", o->nnodes, "Nodes in the run (default 1)")->transform(positive_integer("2"));
  sub->add_option("--node-rank", o->node_rank, "This node's index, 0 to nnodes-1 (default 0)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--master-addr", o->master_addr, "Host of node 0, reachable from every node (default 127.0.0.1)")
      ->check(not_empty("node001"));
  sub->add_option("--master-port", o->master_port, "TCP port on node 0 (default: a free one on one node, else 29500)")
      ->check(CLI::Range(1, 65535));
  sub->add_option("--grace", o->grace_seconds,
                  "Seconds the other processes get to checkpoint and stop when one fails or a signal comes (default 60)")
      ->check(CLI::Range(0, 86400));
  sub->add_option("command", o->command,
                  "After --: an autotrain subcommand (train -c falcon.env) or any program and its arguments")
      ->required();
  sub->positionals_at_end();
  return {sub, [&g, o] {
            dist::LaunchOptions run = *o;
            run.self_exe = self_executable();
            // Global options given before `launch` (autotrain -c x.env launch -- train) belong to
            // the launched autotrain command.
            if (!run.command.empty() && dist::is_autotrain_subcommand(run.command.front())) {
              std::vector<std::string> globals;
              if (!g.config_path.empty()) globals.insert(globals.end(), {"--config", g.config_path});
              for (const auto& s : g.sets) globals.insert(globals.end(), {"--set", s});
              if (g.log_level != "info") globals.insert(globals.end(), {"--log-level", g.log_level});
              run.command.insert(run.command.begin() + 1, globals.begin(), globals.end());
            }
            try {
              return dist::run_launch(run);
            } catch (const dist::LaunchUsageError& e) {
              fmt::print(stderr, "error: {}\n", e.what());
              return static_cast<int>(kExitUsage);
            }
          }};
}

}  // namespace autotrain::cli
