// What a CUDA device is and what this process's CUDA caching allocator holds on it, for the logs
// and the benchmark. Torch-free header; the answers are empty where LibTorch was built without CUDA.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace qa {

struct CudaDeviceInfo {
  std::string name;  // "NVIDIA H100 80GB HBM3"
  double total_mib = 0;
  double free_mib = 0;  // free on the device (all processes) when asked
};

struct CudaMemoryStats {
  double peak_allocated_mib = 0;  // most memory held by tensors at once (the allocator's peak)
  double reserved_mib = 0;        // held by the caching allocator now (what nvidia-smi shows, roughly)
  double peak_reserved_mib = 0;
};

// True when this build links LibTorch's CUDA libraries.
bool built_with_cuda();

std::optional<CudaDeviceInfo> cuda_device_info(int index);
std::optional<CudaMemoryStats> cuda_memory_stats(int index);

// One line for the start of a run: "cuda:0 NVIDIA H100 80GB HBM3, 81559 MiB total, 80910 MiB free".
std::string describe_cuda_device(int index);

// {"cuda_peak_allocated_mb", "cuda_reserved_mb", "cuda_peak_reserved_mb"} for a metrics line, or
// an empty object where there is no CUDA.
nlohmann::json cuda_memory_fields(int index);

}  // namespace qa
