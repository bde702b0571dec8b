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

// Input shapes, so that a kernel's launching operator can be told apart by what it was applied to.
ProfilerConfig kineto_config() { return ProfilerConfig(ProfilerState::KINETO, /*report_input_shapes=*/true); }
const std::set<ActivityType> kActivities = {ActivityType::CPU, ActivityType::CUDA};

double event_ms(const prof::KinetoEvent& e) {
#if QA_TORCH_VERSION_AT_LEAST(2, 1)
  return static_cast<double>(e.durationNs()) / 1e6;
#else
  return static_cast<double>(e.durationUs()) / 1e3;
#endif
}

struct Span {
  uint64_t begin = 0, end = 0;  // ns
};
Span span(const prof::KinetoEvent& e) {
#if QA_TORCH_VERSION_AT_LEAST(2, 1)
  return {e.startNs(), e.endNs()};
#else
  return {e.startUs() * 1000, (e.startUs() + e.durationUs()) * 1000};
#endif
}

constexpr const char* kAutogradNode = "autograd::engine::evaluate_function: ";

// A host-side operator, as the kernels it launched name it (their linked correlation id).
struct HostOp {
  std::string name;
  std::vector<std::vector<int64_t>> shapes;
  uint64_t thread = 0;
  Span when;
};

// The autograd node whose evaluation encloses `op` on its thread, or "". `nodes` is sorted by start.
std::string enclosing_node(const std::vector<HostOp>& nodes, const HostOp& op) {
  auto it = std::upper_bound(nodes.begin(), nodes.end(), op.when.begin,
                             [](uint64_t t, const HostOp& n) { return t < n.when.begin; });
  for (int tries = 0; it != nodes.begin() && tries < 8; ++tries) {  // nested nodes: the innermost first
    --it;
    if (it->when.end >= op.when.end) return it->name.substr(std::string(kAutogradNode).size());
  }
  return "";
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

KernelProfile KernelProfiler::stop() {
  const auto result = prof::disableProfiler();
  std::map<uint64_t, HostOp> ops;                            // by correlation id
  std::map<uint64_t, std::vector<HostOp>> nodes_by_thread;  // autograd nodes being evaluated
  for (const auto& e : result->events()) {
    if (e.deviceType() != c10::DeviceType::CPU || e.isAsync()) continue;
    std::string name = e.name();
    if (!contains(name, "::")) continue;  // CUDA runtime calls (cudaLaunchKernel, ...), not operators
    HostOp op{name, {}, e.startThreadId(), span(e)};
    if (e.hasShapes()) {
      for (const auto& s : e.shapes()) op.shapes.push_back(s);
    }
    if (name.rfind(kAutogradNode, 0) == 0) nodes_by_thread[op.thread].push_back(op);
    ops[e.correlationId()] = std::move(op);
  }
  for (auto& [thread, nodes] : nodes_by_thread) {
    std::sort(nodes.begin(), nodes.end(), [](const HostOp& a, const HostOp& b) { return a.when.begin < b.when.begin; });
  }
  // The label of the operator that launched a kernel (its linked correlation id).
  const auto launched_by = [&](const prof::KinetoEvent& kernel) -> std::string {
    const auto op = ops.find(kernel.linkedCorrelationId());
    if (op == ops.end()) return "(no operator) " + kernel.name();
    const auto nodes = nodes_by_thread.find(op->second.thread);
    const std::string node = nodes == nodes_by_thread.end() ? "" : enclosing_node(nodes->second, op->second);
    return launching_op_label(op->second.name, op->second.shapes, node);
  };
  std::map<std::string, OpTime> by_name, by_op;
  const auto add = [](std::map<std::string, OpTime>& tally, const std::string& key, double ms) {
    OpTime& t = tally[key];
    t.name = key;
    ++t.calls;
    t.self_ms += ms;
    t.total_ms = t.self_ms;
  };
  for (const auto& e : result->events()) {
    if (e.deviceType() != c10::DeviceType::CUDA) continue;
    const double ms = event_ms(e);
    add(by_name, e.name(), ms);
    add(by_op, launched_by(e), ms);
  }
  return {by_self_time(std::move(by_name)), by_self_time(std::move(by_op))};
}

std::string launching_op_label(const std::string& op, const std::vector<std::vector<int64_t>>& shapes,
                               const std::string& autograd_node) {
  std::string label = op;
  for (std::size_t i = 0; i < shapes.size() && i < 4; ++i) {
    label += " [";
    for (std::size_t j = 0; j < shapes[i].size(); ++j) label += (j ? ", " : "") + std::to_string(shapes[i][j]);
    label += "]";
  }
  if (!autograd_node.empty() && op.rfind(kAutogradNode, 0) != 0) label += " in " + autograd_node;
  return label;
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
