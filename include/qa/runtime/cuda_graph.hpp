// CUDA graphs: record a stretch of GPU work once and replay it with one launch. A training step of a
// T5 issues ~14,000 operator calls; on a fast GPU launching them takes longer than running them
// (bench/RESULTS.md, CUDA), so replaying a recorded graph removes most of the step's host time.
// Torch-free header; only a CUDA build of LibTorch records graphs (cuda_graph_cuda.cpp).
#pragma once

#include <functional>
#include <memory>

namespace qa {

class CudaGraph {
 public:
  CudaGraph();
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // True when this build can record graphs (LibTorch with CUDA).
  static bool supported();

  // Records `work` on a side stream of the current CUDA device (nothing runs while recording). The
  // work must not wait for the device (no .item(), no copies from pageable memory) and must read
  // its inputs from, and leave its results in, tensors that outlive the graph: replays reuse their
  // addresses. Memory the work allocates comes from a pool private to the graphs that share it;
  // `share_pool_with` (recorded earlier) lets graphs that never run at the same time share one.
  // Work queued on the current stream before this call is finished before the recording runs.
  void record(const std::function<void()>& work, const CudaGraph* share_pool_with = nullptr);

  // Runs the recorded work again, on the current stream, after what is queued there.
  void replay();

  // Runs `work` once, eagerly, on the same kind of side stream as record() uses, ordered after the
  // current stream's work and before what is queued there next: CUDA recommends a run outside the
  // recording first, so that libraries (cuBLAS workspaces, autograd's streams) are set up.
  static void run_on_side_stream(const std::function<void()>& work);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qa
