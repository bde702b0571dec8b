#include <cstdio>

#include "qa/runtime/cuda_memory.hpp"

namespace qa {

std::string describe_cuda_device(int index) {
  const auto info = cuda_device_info(index);
  if (!info) return "cuda:" + std::to_string(index) + " (no device information)";
  char buf[64];
  std::snprintf(buf, sizeof buf, ", %.0f MiB total, %.0f MiB free", info->total_mib, info->free_mib);
  return "cuda:" + std::to_string(index) + " " + info->name + buf;
}

nlohmann::json cuda_memory_fields(int index) {
  nlohmann::json j = nlohmann::json::object();
  if (const auto s = cuda_memory_stats(index)) {
    j["cuda_peak_allocated_mb"] = s->peak_allocated_mib;
    j["cuda_reserved_mb"] = s->reserved_mib;
    j["cuda_peak_reserved_mb"] = s->peak_reserved_mib;
  }
  return j;
}

}  // namespace qa
