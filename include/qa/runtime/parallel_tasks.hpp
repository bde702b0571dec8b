// Work shared out in shares that threads can take from each other. at::parallel_for hands each thread
// one contiguous share of equal size; where the CPUs run at unequal speeds (a cloud VM's vCPUs whose
// host cores are busy elsewhere: here one of two ran 20-40% slower for minutes at a time; a laptop's
// performance and efficiency cores) the fast threads then wait for the slow one at the end of every
// region. parallel_tasks starts each thread on such a share too (neighbouring tasks, and the data
// they share, stay on one core), and a thread that has finished its own takes tasks from the far end
// of the share with the most left.
#pragma once

#include <cstdint>
#include <functional>

namespace qa {

// One thread's view of the tasks of one parallel_tasks call.
class TaskQueue {
 public:
  // Shares of [0, count) for `threads` threads, thread `self`'s view of them.
  struct Shares;
  TaskQueue(Shares& shares, int self) : shares_(shares), self_(self) {}
  // The next task for this thread into `task`: the front of its own share, else the back of the share
  // with the most left; false once no task is left.
  bool next(int64_t& task);

 private:
  Shares& shares_;
  int self_;
};

// Calls worker(queue) once on each of min(LibTorch's intra-op threads, count) threads, which take the
// tasks [0, count) from their queues until none is left (`for (int64_t t; queue.next(t);) ...`);
// per-thread state (scratch buffers) lives in the worker. Tasks must write disjoint outputs, so that
// which thread runs one does not change the result. One task, one thread, or a call from inside a
// parallel region runs the worker on the caller alone (a single task's own products may then use the
// threads). A task's exception stops this thread's worker and is rethrown here after the others
// finish theirs.
void parallel_tasks(int64_t count, const std::function<void(TaskQueue&)>& worker);

}  // namespace qa
