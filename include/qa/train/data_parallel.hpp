// Data-parallel communication on PyTorch's own distributed engine (c10d): rendezvous through a
// TCPStore served by rank 0, then NCCL on CUDA (when LibTorch was built with it) or Gloo on CPU.
// A default-constructed object is the single-process case: every call is a no-op.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "qa/runtime/process_layout.hpp"

namespace qa {

class DataParallel {
 public:
  // Whether this build can form a CPU (Gloo) process group; see CMakeLists.txt.
  static constexpr bool has_gloo() {
#ifdef QA_NO_GLOO
    return false;
#else
    return true;
#endif
  }
  DataParallel();
  // Joins the process group; waits at most `timeout_seconds` for the others (then a qa::Error). The
  // same timeout bounds every collective, so a rank that dies stops the others instead of hanging them.
  DataParallel(const ProcessLayout& layout, const torch::Device& device, double timeout_seconds);
  ~DataParallel();
  DataParallel(DataParallel&&) noexcept;
  DataParallel& operator=(DataParallel&&) noexcept;

  bool active() const { return impl_ != nullptr; }
  const std::string& backend() const;

  // In place, from rank 0.
  void broadcast(const torch::Tensor& tensor);
  // In place sum over ranks. A large contiguous tensor goes in buckets of at most `bucket_bytes`, all
  // in flight at once; returns when they (and any sum started before) are done.
  void all_reduce_sum(const torch::Tensor& tensor, int64_t bucket_bytes = 25 << 20);
  void all_reduce_max(const torch::Tensor& tensor);
  // Starts an in-place sum over ranks of a contiguous tensor and returns at once (thread-safe: the
  // backward pass calls it); wait_pending() waits for every sum started so far.
  void start_all_reduce_sum(const torch::Tensor& tensor);
  void wait_pending();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qa
