#include "qa/runtime/kernel_profile.hpp"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <map>
#include <set>

#include "qa/runtime/torch_compat.hpp"
#include "qa/util/error.hpp"

namespace qa {
namespace {

namespace prof = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

ProfilerConfig kineto_config() { return ProfilerConfig(ProfilerState::KINETO); }
const std::set<ActivityType> kActivities = {ActivityType::CUDA};

double event_ms(const prof::KinetoEvent& e) {
#if QA_TORCH_VERSION_AT_LEAST(2, 1)
  return static_cast<double>(e.durationNs()) / 1e6;
#else
  return static_cast<double>(e.durationUs()) / 1e3;
#endif
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

void KernelProfiler::start() {
  try {
    prof::prepareProfiler(kineto_config(), kActivities);
    prof::enableProfiler(kineto_config(), kActivities);
  } catch (const std::exception& e) {
    throw Error(std::string("kernel profile: LibTorch's Kineto profiler is not usable here: ") + e.what());
  }
}

std::vector<OpTime> KernelProfiler::stop() {
  const auto result = prof::disableProfiler();
  std::map<std::string, OpTime> by_name;
  for (const auto& e : result->events()) {
    if (e.deviceType() != c10::DeviceType::CUDA) continue;
    OpTime& t = by_name[e.name()];
    t.name = e.name();
    ++t.calls;
    t.self_ms += event_ms(e);
    t.total_ms = t.self_ms;
  }
  return by_self_time(std::move(by_name));
}

std::string kernel_category(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  // Attention first: the memory-efficient kernels are CUTLASS kernels too.
  if (contains(n, "fmha") || contains(n, "attention") || contains(n, "flash")) return "attention";
  if (contains(n, "gemm") || contains(n, "nvjet") || contains(n, "cutlass") || contains(n, "xmma") ||
      contains(n, "cublas") || contains(n, "sm90_") || contains(n, "sm80_")) {
    return "matmul";
  }
  if (contains(n, "softmax")) return "softmax";
  if (contains(n, "adam") || contains(n, "multi_tensor")) return "optimizer";
  if (contains(n, "norm")) return "normalization";
  if (contains(n, "memcpy") || contains(n, "memset")) return "copy/fill";
  if (contains(n, "index") || contains(n, "embedding") || contains(n, "scatter") || contains(n, "gather") ||
      contains(n, "sort") || contains(n, "radix")) {
    return "embedding/indexing";
  }
  if (contains(n, "reduce")) return "reduction";
  if (contains(n, "elementwise") || contains(n, "dropout")) return "element-wise";
  return "other";
}

std::vector<OpTime> by_kernel_category(const std::vector<OpTime>& kernels) {
  std::map<std::string, OpTime> by_name;
  for (const auto& k : kernels) {
    const std::string c = kernel_category(k.name);
    OpTime& t = by_name[c];
    t.name = c;
    t.calls += k.calls;
    t.self_ms += k.self_ms;
    t.total_ms = t.self_ms;
  }
  return by_self_time(std::move(by_name));
}

}  // namespace qa
