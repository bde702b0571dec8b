// LibTorch without CUDA: there is nothing to record.
#include <stdexcept>

#include "qa/runtime/cuda_graph.hpp"

namespace qa {

struct CudaGraph::Impl {};

namespace {
[[noreturn]] void unavailable() { throw std::runtime_error("CUDA graphs need a CUDA build of LibTorch"); }
}  // namespace

CudaGraph::CudaGraph() = default;
CudaGraph::~CudaGraph() = default;
bool CudaGraph::supported() { return false; }

void CudaGraph::record(const std::function<void()>&, const CudaGraph*) { unavailable(); }
void CudaGraph::replay() { unavailable(); }
void CudaGraph::run_on_side_stream(const std::function<void()>&) { unavailable(); }

}  // namespace qa
