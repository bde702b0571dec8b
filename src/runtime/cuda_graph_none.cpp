// LibTorch without CUDA: there is nothing to record.
#include <stdexcept>

#include "qa/runtime/cuda_graph.hpp"

namespace qa {

struct CudaGraph::Impl {};

CudaGraph::CudaGraph() = default;
CudaGraph::~CudaGraph() = default;
bool CudaGraph::supported() { return false; }

void CudaGraph::record(const std::function<void()>&, const CudaGraph*) {
  throw std::runtime_error("CUDA graphs need a CUDA build of LibTorch");
}
void CudaGraph::replay() { throw std::runtime_error("CUDA graphs need a CUDA build of LibTorch"); }
void CudaGraph::run_on_side_stream(const std::function<void()>&) {
  throw std::runtime_error("CUDA graphs need a CUDA build of LibTorch");
}

}  // namespace qa
