#include "qa/runtime/process_layout.hpp"

#include <cerrno>
#include <cstdlib>

#include "qa/util/error.hpp"

namespace qa {
namespace {

// A non-negative integer environment variable, or -1 when unset.
int64_t env_int(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  if (!v) return -1;
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(v, &end, 10);
  if (!*v || *end || errno || n < 0) {
    throw Error(std::string("environment variable ") + name + "='" + v + "' is not a non-negative integer",
                ExitCode::kUsage);
  }
  return n;
}

}  // namespace

std::string ProcessLayout::describe() const {
  if (!distributed()) return "single process";
  return "rank " + std::to_string(rank) + " of " + std::to_string(world_size) + " (local rank " +
         std::to_string(local_rank) + "), " + launcher + ", rendezvous " + master_addr + ":" + std::to_string(master_port);
}

ProcessLayout detect_process_layout(const std::string& default_addr, int64_t default_port, const EnvLookup& env) {
  ProcessLayout p;
  struct Source {
    const char *launcher, *rank, *size, *local;
  };
  // torchrun first: it also runs under Slurm allocations, where SLURM_* describe the allocation.
  for (const Source& s : {Source{"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
                          Source{"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
                          Source{"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"}}) {
    const int64_t rank = env_int(env, s.rank), size = env_int(env, s.size);
    if (rank < 0 && size < 0) continue;
    if (rank < 0 || size < 0) {
      throw Error(std::string(s.launcher) + " layout: " + (rank < 0 ? s.rank : s.size) + " is not set but " +
                      (rank < 0 ? s.size : s.rank) + " is",
                  ExitCode::kUsage);
    }
    if (size < 1 || rank >= size) {
      throw Error(std::string(s.launcher) + " layout: " + s.rank + "=" + std::to_string(rank) + " is not below " + s.size +
                      "=" + std::to_string(size),
                  ExitCode::kUsage);
    }
    p.launcher = s.launcher;
    p.rank = rank;
    p.world_size = size;
    const int64_t local = env_int(env, s.local);
    p.local_rank = local >= 0 ? local : 0;
    break;
  }
  if (!p.distributed()) return p;
  const char* addr = env("MASTER_ADDR");
  p.master_addr = addr && *addr ? addr : default_addr;
  const int64_t port = env_int(env, "MASTER_PORT");
  p.master_port = port >= 0 ? port : default_port;
  if (p.master_addr.empty()) {
    throw Error(p.launcher + " layout with " + std::to_string(p.world_size) +
                    " processes but no rendezvous address: set MASTER_ADDR (or distributed.master_addr)",
                ExitCode::kUsage);
  }
  if (p.master_port < 1 || p.master_port > 65535) {
    throw Error("rendezvous port " + std::to_string(p.master_port) + " is not in 1..65535: set MASTER_PORT (or distributed.master_port)",
                ExitCode::kUsage);
  }
  return p;
}

}  // namespace qa
