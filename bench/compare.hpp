// What the micro-benchmarks under bench/ share: integer options and flags, and timing two ways of one thing
// alternately (first one then the other, then swapped), so that the machine's drift falls on both.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace qa::bench {

// Reads --name value pairs into the given fields and --flag switches into the flags; exits 2 with a
// one-line message on anything else.
inline void parse_options(int argc, char** argv, const char* program, const std::map<std::string, int64_t*>& fields,
                          const std::map<std::string, bool*>& flags = {}) {
  int i = 1;
  while (i < argc) {
    if (const auto flag = flags.find(argv[i]); flag != flags.end()) {  // takes no value
      *flag->second = true;
      ++i;
      continue;
    }
    const auto it = fields.find(argv[i]);
    if (it == fields.end()) {
      std::fprintf(stderr, "%s: unknown option '%s'\n", program, argv[i]);
      std::exit(2);
    }
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    char* end = nullptr;
    const long long v = value ? std::strtoll(value, &end, 10) : 0;
    if (!value || *end != '\0' || v <= 0) {
      std::fprintf(stderr, "%s: %s needs a positive integer, got '%s'\n", program, argv[i], value ? value : "");
      std::exit(2);
    }
    *it->second = v;
    i += 2;
  }
}

struct Comparison {
  double first_ms, second_ms;  // medians
  double ratio() const { return first_ms / second_ms; }
};

// Two warm-up rounds, then `steps` timed runs of each, alternating.
inline Comparison compare(int64_t steps, const std::function<void()>& first, const std::function<void()>& second) {
  const auto time = [](const std::function<void()>& f) {
    const auto start = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  for (int warm = 0; warm < 2; ++warm) time(first), time(second);
  std::vector<double> a, b;
  for (int64_t i = 0; i < steps; ++i) {
    if (i % 2 == 0) {
      a.push_back(time(first));
      b.push_back(time(second));
    } else {
      b.push_back(time(second));
      a.push_back(time(first));
    }
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {median(a), median(b)};
}

}  // namespace qa::bench
