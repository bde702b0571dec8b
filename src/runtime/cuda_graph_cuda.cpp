// LibTorch with CUDA (compiled only then; see CMakeLists.txt): at::cuda::CUDAGraph on a side stream.
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <map>
#include <mutex>

#include "qa/runtime/cuda_graph.hpp"

namespace qa {

struct CudaGraph::Impl {
  at::cuda::CUDAGraph graph;
};

CudaGraph::CudaGraph() = default;
CudaGraph::~CudaGraph() = default;
bool CudaGraph::supported() { return true; }

namespace {
// One side stream per device for both the eager first run and the recording, so that what the first
// run sets up per stream (cuBLAS workspace, autograd's stream bookkeeping) is what the recording uses.
c10::cuda::CUDAStream side_stream(c10::DeviceIndex device) {
  static std::mutex mutex;
  static std::map<c10::DeviceIndex, c10::cuda::CUDAStream> streams;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = streams.find(device);
  if (it == streams.end()) {
    it = streams.emplace(device, c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device)).first;
  }
  return it->second;
}

// Runs `body` on the side stream: the side stream first waits for the current stream's queued work,
// and the current stream then waits for the side stream's. (A graph cannot be recorded on the legacy
// default stream, which is where LibTorch queues work by default.)
void on_side_stream(const std::function<void()>& body) {
  const auto current = c10::cuda::getCurrentCUDAStream();
  const auto side = side_stream(current.device_index());
  at::cuda::CUDAEvent before;
  before.record(current);
  before.block(side);
  {
    c10::cuda::CUDAStreamGuard guard(side);
    body();
  }
  at::cuda::CUDAEvent after;
  after.record(side);
  after.block(current);
}
}  // namespace

void CudaGraph::record(const std::function<void()>& work, const CudaGraph* share_pool_with) {
  impl_ = std::make_unique<Impl>();
  on_side_stream([&] {
    // Thread-local capture mode: autograd's device thread and the batch prefetcher keep running
    // (their allocations are not graph work); the graph is what is queued on this stream.
    if (share_pool_with && share_pool_with->impl_) {
      impl_->graph.capture_begin(share_pool_with->impl_->graph.pool(), cudaStreamCaptureModeThreadLocal);
    } else {
      impl_->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    }
    try {
      work();
    } catch (...) {
      try {
        impl_->graph.capture_end();  // leave the stream out of capture mode before reporting
      } catch (...) {
      }
      impl_.reset();
      throw;
    }
    impl_->graph.capture_end();
  });
}

void CudaGraph::replay() { impl_->graph.replay(); }

void CudaGraph::run_on_side_stream(const std::function<void()>& work) { on_side_stream(work); }

}  // namespace qa
