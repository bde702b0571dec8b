#include "qa/runtime/process_layout.hpp"

#include <map>

#include <gtest/gtest.h>

#include "qa/util/error.hpp"

namespace qa {
namespace {

EnvLookup env_of(const std::map<std::string, std::string>& vars) {
  return [vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

std::string error_of(const std::map<std::string, std::string>& vars) {
  try {
    detect_process_layout("", 29500, env_of(vars));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ProcessLayout, NoVariablesIsASingleProcess) {
  auto p = detect_process_layout("", 29500, env_of({}));
  EXPECT_FALSE(p.distributed());
  EXPECT_EQ(p.rank, 0);
  EXPECT_EQ(p.describe(), "single process");
}

TEST(ProcessLayout, TorchrunSlurmAndOpenMpi) {
  auto t = detect_process_layout("", 29500, env_of({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "3"},
                                                    {"MASTER_ADDR", "node1"}, {"MASTER_PORT", "1234"}}));
  EXPECT_EQ(t.launcher, "torchrun");
  EXPECT_EQ(t.rank, 3);
  EXPECT_EQ(t.world_size, 8);
  EXPECT_EQ(t.local_rank, 3);
  EXPECT_EQ(t.describe(), "rank 3 of 8 (local rank 3), torchrun, rendezvous node1:1234");
  // Slurm: the address from the config when MASTER_ADDR is unset.
  auto s = detect_process_layout("head", 29500, env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "1"}}));
  EXPECT_EQ(s.launcher, "slurm");
  EXPECT_EQ(s.rank, 5);
  EXPECT_EQ(s.local_rank, 1);
  EXPECT_EQ(s.master_addr, "head");
  EXPECT_EQ(s.master_port, 29500);
  auto m = detect_process_layout("", 29500, env_of({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                                                    {"OMPI_COMM_WORLD_LOCAL_RANK", "0"}, {"MASTER_ADDR", "a"}}));
  EXPECT_EQ(m.launcher, "openmpi");
  EXPECT_EQ(m.world_size, 2);
  // torchrun's variables win inside a Slurm allocation.
  auto both = detect_process_layout("", 29500, env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "0"},
                                                       {"SLURM_NTASKS", "1"}, {"MASTER_ADDR", "x"}}));
  EXPECT_EQ(both.launcher, "torchrun");
  EXPECT_EQ(both.world_size, 2);
}

TEST(ProcessLayout, BadOrInconsistentVariablesAreClearErrors) {
  EXPECT_NE(error_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK='x' is not a non-negative integer"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("RANK=2 is not below WORLD_SIZE=2"), std::string::npos);
  EXPECT_NE(error_of({{"WORLD_SIZE", "2"}}).find("RANK is not set but WORLD_SIZE is"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}}).find("set MASTER_ADDR"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "70000"}}).find("1..65535"),
            std::string::npos);
}

}  // namespace qa
