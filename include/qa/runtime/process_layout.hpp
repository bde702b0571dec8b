// Where this process sits in a data-parallel job, read from the launcher's environment: torchrun
// (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), Slurm (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID) or Open MPI (OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK). No variables: a single process.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace qa {

struct ProcessLayout {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;
  std::string master_addr;  // rendezvous (TCPStore on rank 0)
  int64_t master_port = 0;
  std::string launcher = "single process";  // torchrun | slurm | openmpi | single process

  bool distributed() const { return world_size > 1; }
  bool is_main() const { return rank == 0; }
  // "rank 1 of 4 (local rank 1), torchrun, rendezvous 127.0.0.1:29500"
  std::string describe() const;
};

using EnvLookup = std::function<const char*(const char*)>;

// Reads the layout from `env` (getenv by default). MASTER_ADDR / MASTER_PORT from the environment win
// over `default_addr` / `default_port` (the config's distributed.master_addr / master_port).
// Inconsistent or malformed values are a qa::Error (exit code kUsage) naming the variable.
ProcessLayout detect_process_layout(const std::string& default_addr, int64_t default_port,
                                    const EnvLookup& env = [](const char* name) -> const char* { return std::getenv(name); });

}  // namespace qa
