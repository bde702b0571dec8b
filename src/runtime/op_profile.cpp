#include "qa/runtime/op_profile.hpp"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_map>

namespace qa {

namespace prof = torch::autograd::profiler;

void OpProfiler::start() {
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
}

std::vector<OpTime> OpProfiler::stop() {
  const auto lists = prof::disableProfilerLegacy();
  std::map<std::string, OpTime> by_name;
  for (const auto& events : lists) {
    // Push/pop pairs nest per thread; a frame's self time is its span minus its children's spans.
    struct Frame {
      const prof::LegacyEvent* push;
      double children_us;
    };
    std::vector<Frame> stack;
    for (const auto& e : events) {
      if (e.kind() == prof::EventKind::PushRange) {
        stack.push_back({&e, 0.0});
      } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
        const Frame f = stack.back();
        stack.pop_back();
        const double span = f.push->cpuElapsedUs(e);
        OpTime& t = by_name[f.push->name()];
        t.name = f.push->name();
        ++t.calls;
        t.self_ms += (span - f.children_us) / 1000.0;
        if (stack.empty()) t.total_ms += span / 1000.0;
        if (!stack.empty()) stack.back().children_us += span;
      }
    }
  }
  return by_self_time(std::move(by_name));
}

std::vector<OpTime> by_self_time(std::map<std::string, OpTime> by_name) {
  std::vector<OpTime> out;
  out.reserve(by_name.size());
  for (auto& [name, t] : by_name) out.push_back(std::move(t));
  std::sort(out.begin(), out.end(), [](const OpTime& a, const OpTime& b) { return a.self_ms > b.self_ms; });
  return out;
}

std::string format_op_table(const std::vector<OpTime>& ops, double wall_ms, std::size_t rows, const std::string& title,
                            const std::string& unaccounted) {
  std::string s;
  char line[256];
  std::snprintf(line, sizeof line, "%-60s %8s %11s %7s\n", title.substr(0, 60).c_str(), "calls", "self ms", "share");
  s += line;
  double rest_ms = 0, all_ms = 0;
  int64_t rest_calls = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    all_ms += ops[i].self_ms;
    if (i >= rows) {
      rest_ms += ops[i].self_ms;
      rest_calls += ops[i].calls;
      continue;
    }
    std::string name = ops[i].name;
    if (name.size() > 60) name = name.substr(0, 57) + "...";
    std::snprintf(line, sizeof line, "%-60s %8lld %11.1f %6.1f%%\n", name.c_str(), static_cast<long long>(ops[i].calls),
                  ops[i].self_ms, wall_ms > 0 ? 100.0 * ops[i].self_ms / wall_ms : 0.0);
    s += line;
  }
  if (ops.size() > rows) {
    std::snprintf(line, sizeof line, "%-60s %8lld %11.1f %6.1f%%\n", "(other operators)", static_cast<long long>(rest_calls),
                  rest_ms, wall_ms > 0 ? 100.0 * rest_ms / wall_ms : 0.0);
    s += line;
  }
  std::snprintf(line, sizeof line, "%-60s %8s %11.1f %6.1f%%\n", unaccounted.substr(0, 60).c_str(), "",
                std::max(0.0, wall_ms - all_ms), wall_ms > 0 ? 100.0 * std::max(0.0, wall_ms - all_ms) / wall_ms : 0.0);
  s += line;
  return s;
}

}  // namespace qa
