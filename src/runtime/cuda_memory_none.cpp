// LibTorch without CUDA: there is no device to describe.
#include "qa/runtime/cuda_memory.hpp"

namespace qa {

bool built_with_cuda() { return false; }
std::optional<CudaDeviceInfo> cuda_device_info(int) { return std::nullopt; }
std::optional<CudaMemoryStats> cuda_memory_stats(int) { return std::nullopt; }

}  // namespace qa
