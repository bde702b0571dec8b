#include "qa/runtime/parallel_tasks.hpp"

#include <ATen/Parallel.h>

#include <algorithm>

namespace qa {

void parallel_tasks(int64_t count, const std::function<void(TaskQueue&)>& worker) {
  if (count <= 0) return;
  TaskQueue queue(count);
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), count);
  if (threads <= 1 || at::in_parallel_region()) {
    worker(queue);
    return;
  }
  // One index per thread: at::parallel_for gives each of `threads` threads a chunk of one.
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) worker(queue);
  });
}

}  // namespace qa
