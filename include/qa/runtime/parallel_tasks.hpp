// Work shared out by claiming, not by fixed shares. at::parallel_for hands each thread one contiguous
// share of equal size; where the CPUs run at unequal speeds (a cloud VM's vCPUs whose host cores are
// busy elsewhere: here one of two ran 20-40% slower for minutes at a time; a laptop's performance and
// efficiency cores) the fast threads then wait for the slow one at the end of every region.
// parallel_tasks lets each thread take the next task as it finishes one, so the fast ones take more.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

namespace qa {

// The tasks [0, count) of one parallel_tasks call, taken one at a time by whichever thread asks first.
class TaskQueue {
 public:
  explicit TaskQueue(int64_t count) : count_(count) {}
  // The next untaken task into `task`; false once all are taken.
  bool next(int64_t& task) {
    task = next_.fetch_add(1, std::memory_order_relaxed);
    return task < count_;
  }

 private:
  std::atomic<int64_t> next_{0};
  const int64_t count_;
};

// Calls worker(queue) once on each of min(LibTorch's intra-op threads, count) threads, which take the
// tasks from the queue until none is left (`for (int64_t t; queue.next(t);) ...`); per-thread state
// (scratch buffers) lives in the worker. Tasks must write disjoint outputs, so that which thread runs
// one does not change the result. One task, one thread, or a call from inside a parallel region runs
// the worker on the caller alone (a single task's own products may then use the threads). A task's
// exception stops this thread's worker and is rethrown here after the others finish theirs.
void parallel_tasks(int64_t count, const std::function<void(TaskQueue&)>& worker);

}  // namespace qa
