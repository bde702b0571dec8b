// Where a step's time goes, per LibTorch operator: a thin layer over LibTorch's own profiler
// (RecordFunction push/pop events), reduced to a table of self times. Torch-free header.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace qa {

struct OpTime {
  std::string name;       // "aten::mm", "autograd::engine::evaluate_function: MmBackward0", ...
  int64_t calls = 0;
  double self_ms = 0;     // time inside the op minus the ops it called (summed over threads)
  double total_ms = 0;    // time inside the op, children included (outermost calls only)
};

// Records every operator between start() and stop() on this thread and the threads LibTorch hands
// work to. Not reentrant; one at a time per process.
class OpProfiler {
 public:
  void start();
  // Ops sorted by self time, largest first.
  std::vector<OpTime> stop();
};

// The entries of a by-name tally, largest self time first (the order of every profile table).
std::vector<OpTime> by_self_time(std::map<std::string, OpTime> by_name);

// A fixed-width table: the top `rows` ops by self time with their share of `wall_ms`, then the rest,
// then the part of `wall_ms` no op accounts for (for GPU kernels: the time the GPU sat idle).
std::string format_op_table(const std::vector<OpTime>& ops, double wall_ms, std::size_t rows,
                            const std::string& title = "operator (self time)",
                            const std::string& unaccounted = "(outside any operator)");

}  // namespace qa
