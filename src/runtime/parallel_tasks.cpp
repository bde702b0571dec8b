#include "qa/runtime/parallel_tasks.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <stdexcept>
#include <vector>

namespace qa {

// Each share's untaken tasks [front, back) packed in one word, so that its owner (taking the front)
// and a thief (taking the back) claim with one compare-and-swap each: front only grows and back only
// shrinks, so a claim never sees a stale range as valid.
struct TaskQueue::Shares {
  std::vector<std::atomic<uint64_t>> ranges;
  Shares(int64_t count, int threads) : ranges(static_cast<std::size_t>(threads)) {
    for (int i = 0; i < threads; ++i) ranges[i].store(pack(count * i / threads, count * (i + 1) / threads));
  }
  static uint64_t pack(int64_t front, int64_t back) { return static_cast<uint64_t>(front) << 32 | static_cast<uint64_t>(back); }
  static int64_t front(uint64_t v) { return static_cast<int64_t>(v >> 32); }
  static int64_t back(uint64_t v) { return static_cast<int64_t>(v & 0xffffffffu); }
};

bool TaskQueue::next(int64_t& task) {
  auto& own = shares_.ranges[static_cast<std::size_t>(self_)];
  for (uint64_t v = own.load(std::memory_order_relaxed); Shares::front(v) < Shares::back(v);) {
    if (own.compare_exchange_weak(v, Shares::pack(Shares::front(v) + 1, Shares::back(v)), std::memory_order_relaxed)) {
      task = Shares::front(v);
      return true;
    }
  }
  for (;;) {
    std::size_t victim = 0;
    int64_t most = 0;
    for (std::size_t j = 0; j < shares_.ranges.size(); ++j) {
      const uint64_t v = shares_.ranges[j].load(std::memory_order_relaxed);
      if (Shares::back(v) - Shares::front(v) > most) most = Shares::back(v) - Shares::front(v), victim = j;
    }
    if (most <= 0) return false;
    auto& range = shares_.ranges[victim];
    uint64_t v = range.load(std::memory_order_relaxed);
    if (Shares::front(v) < Shares::back(v) &&
        range.compare_exchange_strong(v, Shares::pack(Shares::front(v), Shares::back(v) - 1), std::memory_order_relaxed)) {
      task = Shares::back(v) - 1;
      return true;
    }
  }
}

void parallel_tasks(int64_t count, const std::function<void(TaskQueue&)>& worker) {
  if (count <= 0) return;
  if (count > std::numeric_limits<uint32_t>::max()) throw std::invalid_argument("parallel_tasks: more than 2^32 - 1 tasks");
  const int threads = static_cast<int>(std::min<int64_t>(at::get_num_threads(), count));
  if (threads <= 1 || at::in_parallel_region()) {
    TaskQueue::Shares shares(count, 1);
    TaskQueue queue(shares, 0);
    worker(queue);
    return;
  }
  TaskQueue::Shares shares(count, threads);
  // One index per thread: at::parallel_for gives each of `threads` threads a chunk of one.
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      TaskQueue queue(shares, static_cast<int>(i));
      worker(queue);
    }
  });
}

}  // namespace qa
