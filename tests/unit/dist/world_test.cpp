// The launcher environment as torchrun, `autotrain launch` and srun set it.
#include "autotrain/dist/world.h"

#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace autotrain::dist {
namespace {

using ::testing::HasSubstr;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string error_of(const std::map<std::string, std::string>& vars) {
  try {
    detect_world(env_of(vars));
  } catch (const WorldError& e) {
    return e.what();
  }
  return "no error";
}

TEST(World, NoLauncherIsOneProcess) {
  const WorldInfo w = detect_world(env_of({{"SLURM_NTASKS", "8"}, {"SLURM_PROCID", "0"}}));  // sbatch without srun
  EXPECT_FALSE(w.distributed());
  EXPECT_TRUE(w.lead());
  EXPECT_EQ(w.world_size, 1);
}

TEST(World, TorchrunVariables) {
  const WorldInfo w = detect_world(env_of({{"RANK", "5"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"},
                                           {"LOCAL_WORLD_SIZE", "4"}, {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "29501"}}));
  EXPECT_EQ(w.rank, 5);
  EXPECT_EQ(w.world_size, 8);
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.local_world_size, 4);
  EXPECT_EQ(w.master_addr, "node7");
  EXPECT_EQ(w.master_port, 29501);
  EXPECT_TRUE(w.distributed());
  EXPECT_FALSE(w.lead());
  // One process by torchrun's variables needs no rendezvous.
  EXPECT_FALSE(detect_world(env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}})).distributed());
}

TEST(World, TorchrunAgentStoreIsJoined) {
  const WorldInfo w = detect_world(env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"},
                                           {"MASTER_PORT", "29500"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                           {"TORCHELASTIC_RUN_ID", "job7"}, {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  EXPECT_TRUE(w.agent_store);
  EXPECT_EQ(w.key_prefix, "autotrain/job7/2/");
  EXPECT_FALSE(detect_world(env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}))
                   .agent_store);
}

TEST(World, TorchrunMistakesAreNamed) {
  EXPECT_THAT(error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}),
              HasSubstr("RANK=2 is outside the world of WORLD_SIZE=2 processes (ranks 0 to 1)"));
  EXPECT_THAT(error_of({{"RANK", "0"}}), HasSubstr("WORLD_SIZE is not set"));
  EXPECT_THAT(error_of({{"RANK", "one"}, {"WORLD_SIZE", "2"}}), HasSubstr("RANK=one is not a whole number"));
  EXPECT_THAT(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29500"}}),
              HasSubstr("MASTER_ADDR is not set"));
  EXPECT_THAT(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}}),
              HasSubstr("MASTER_PORT=70000 is not a TCP port"));
  EXPECT_THAT(error_of({{"RANK", "0"}, {"WORLD_SIZE", "0"}}), HasSubstr("WORLD_SIZE=0"));
}

TEST(World, SrunTasks) {
  const WorldInfo w = detect_world(env_of({{"SLURM_STEP_NUM_TASKS", "8"}, {"SLURM_PROCID", "6"}, {"SLURM_LOCALID", "2"},
                                           {"SLURM_STEP_TASKS_PER_NODE", "4(x2)"},
                                           {"SLURM_JOB_NODELIST", "gpu[007-008]"}, {"SLURM_JOB_ID", "123456"}}));
  EXPECT_EQ(w.rank, 6);
  EXPECT_EQ(w.world_size, 8);
  EXPECT_EQ(w.local_rank, 2);
  EXPECT_EQ(w.local_world_size, 4);
  EXPECT_EQ(w.master_addr, "gpu007");
  EXPECT_EQ(w.master_port, 15000 + 123456 % 15000);
  EXPECT_EQ(w.source, "SLURM (srun)");
  // torchrun's variables win (autotrain launch inside an srun step).
  EXPECT_EQ(detect_world(env_of({{"SLURM_STEP_NUM_TASKS", "8"}, {"SLURM_PROCID", "6"}, {"RANK", "0"}, {"WORLD_SIZE", "1"}}))
                .world_size,
            1);
  EXPECT_THAT(error_of({{"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_PROCID", "1"}}), HasSubstr("SLURM_JOB_NODELIST"));
}

TEST(World, FirstSlurmHost) {
  EXPECT_EQ(first_slurm_host("node1"), "node1");
  EXPECT_EQ(first_slurm_host("node1,node2"), "node1");
  EXPECT_EQ(first_slurm_host("gpu[07-09,12],cpu1"), "gpu07");
  EXPECT_EQ(first_slurm_host("gpu[12,07]"), "gpu12");
  EXPECT_EQ(first_slurm_host("rack1-n[3-4]-ib"), "rack1-n3-ib");
  EXPECT_THROW(first_slurm_host("gpu[]"), WorldError);
}

}  // namespace
}  // namespace autotrain::dist
