// LibTorch with CUDA (compiled only then; see CMakeLists.txt): the CUDA runtime for the device,
// c10's caching allocator for what this process holds.
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime_api.h>

#include "qa/runtime/cuda_memory.hpp"

namespace qa {
namespace {
constexpr double kMiB = 1024.0 * 1024.0;
// StatType::AGGREGATE (all pools). The enum moved from c10::cuda::CUDACachingAllocator (1.x) to
// c10::CachingDeviceAllocator (2.5+); its value is 0 in both.
constexpr std::size_t kAggregate = 0;
}  // namespace

bool built_with_cuda() { return true; }

std::optional<CudaDeviceInfo> cuda_device_info(int index) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) return std::nullopt;
  CudaDeviceInfo info;
  info.name = prop.name;
  info.total_mib = static_cast<double>(prop.totalGlobalMem) / kMiB;
  int previous = 0;
  std::size_t free_bytes = 0, total_bytes = 0;
  if (cudaGetDevice(&previous) == cudaSuccess && cudaSetDevice(index) == cudaSuccess) {
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) info.free_mib = static_cast<double>(free_bytes) / kMiB;
    cudaSetDevice(previous);
  }
  return info;
}

std::optional<CudaMemoryStats> cuda_memory_stats(int index) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || index < 0 || index >= count) return std::nullopt;
  const auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
  CudaMemoryStats out;
  out.peak_allocated_mib = static_cast<double>(s.allocated_bytes[kAggregate].peak) / kMiB;
  out.reserved_mib = static_cast<double>(s.reserved_bytes[kAggregate].current) / kMiB;
  out.peak_reserved_mib = static_cast<double>(s.reserved_bytes[kAggregate].peak) / kMiB;
  return out;
}

}  // namespace qa
