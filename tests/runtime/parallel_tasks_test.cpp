// parallel_tasks: every task once, each thread starting on its own share, and a free thread taking
// the tasks a slow one has not reached.
#include "qa/runtime/parallel_tasks.hpp"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "qa/runtime/runtime.hpp"

namespace qa {
namespace {

// Restores LibTorch's thread count at the end of a test.
struct ThreadCount {
  int before = at::get_num_threads();
  explicit ThreadCount(int n) { configure_threads(n); }
  ~ThreadCount() { configure_threads(before); }
};

std::vector<int> runs_per_task(int64_t count) {
  std::vector<int> runs(static_cast<std::size_t>(count), 0);
  parallel_tasks(count, [&](TaskQueue& q) {
    for (int64_t t; q.next(t);) ++runs[static_cast<std::size_t>(t)];  // tasks are disjoint: no race
  });
  return runs;
}

TEST(ParallelTasks, EveryTaskRunsOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadCount tc(threads);
    for (int64_t count : {0, 1, 2, 3, 7, 1000}) {
      const auto runs = runs_per_task(count);
      for (std::size_t t = 0; t < runs.size(); ++t) ASSERT_EQ(runs[t], 1) << "task " << t << " of " << count << ", " << threads << " threads";
    }
  }
}

TEST(ParallelTasks, StolenTasksRunOnceToo) {
  for (int threads : {2, 3}) {
    ThreadCount tc(threads);
    // Thread 0 slow: the others finish their shares and take from its back, and from each other's.
    std::vector<std::atomic<int>> runs(500);
    parallel_tasks(500, [&](TaskQueue& q) {
      const bool slow = at::get_thread_num() == 0;
      for (int64_t t; q.next(t);) {
        ++runs[static_cast<std::size_t>(t)];
        if (slow) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
    for (std::size_t t = 0; t < runs.size(); ++t) ASSERT_EQ(runs[t].load(), 1) << "task " << t << ", " << threads << " threads";
  }
}

TEST(ParallelTasks, EachThreadStartsOnItsOwnShare) {
  ThreadCount tc(2);
  if (own_kernel_threads() < 2) GTEST_SKIP() << "qa-train's kernels run on one thread in this build";
  // 1 ms per task: each thread reaches its own share long before the other could take all of it.
  std::mutex m;
  std::vector<int64_t> first(2, -1);
  parallel_tasks(20, [&](TaskQueue& q) {
    bool started = false;
    for (int64_t t; q.next(t);) {
      if (!started) {
        std::lock_guard<std::mutex> lock(m);
        first[static_cast<std::size_t>(at::get_thread_num())] = t;
        started = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  EXPECT_EQ(first[0], 0);
  EXPECT_EQ(first[1], 10);
}

TEST(ParallelTasks, ASlowThreadTakesFewerTasks) {
  ThreadCount tc(2);
  if (own_kernel_threads() < 2) GTEST_SKIP() << "qa-train's kernels run on one thread in this build";
  // Thread 0 takes 20 ms per task, the other 1 ms: a fixed half each would give thread 0 20 of the
  // 40 tasks; the other thread, done with its own half, takes the rest of thread 0's from the back.
  constexpr int64_t kTasks = 40;
  std::mutex m;
  std::vector<int64_t> by_thread0;
  parallel_tasks(kTasks, [&](TaskQueue& q) {
    const bool slow = at::get_thread_num() == 0;
    for (int64_t t; q.next(t);) {
      std::this_thread::sleep_for(std::chrono::milliseconds(slow ? 20 : 1));
      if (!slow) continue;
      std::lock_guard<std::mutex> lock(m);
      by_thread0.push_back(t);
    }
  });
  EXPECT_LT(by_thread0.size(), static_cast<std::size_t>(kTasks / 4)) << "thread 0 ran " << by_thread0.size() << " of " << kTasks << " tasks";
}

TEST(ParallelTasks, InsideAParallelRegionRunsOnTheCaller) {
  ThreadCount tc(2);
  // Each of the region's threads runs its own call's 4 tasks itself: [outer][task] = thread number.
  std::vector<std::vector<int>> thread_of_task(2, std::vector<int>(4, -1));
  std::vector<int> caller(2, -1);
  at::parallel_for(0, 2, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      caller[i] = at::get_thread_num();
      parallel_tasks(4, [&](TaskQueue& q) {
        for (int64_t t; q.next(t);) thread_of_task[i][static_cast<std::size_t>(t)] = at::get_thread_num();
      });
    }
  });
  for (std::size_t i = 0; i < 2; ++i) {
    for (int thread : thread_of_task[i]) EXPECT_EQ(thread, caller[i]);
  }
}

TEST(ParallelTasks, ATasksErrorReachesTheCaller) {
  ThreadCount tc(2);
  std::atomic<int> ran{0};
  EXPECT_THROW(parallel_tasks(10,
                              [&](TaskQueue& q) {
                                for (int64_t t; q.next(t);) {
                                  ++ran;
                                  if (t == 3) throw std::runtime_error("task 3 failed");
                                }
                              }),
               std::runtime_error);
  EXPECT_GE(ran.load(), 4);
}

}  // namespace
}  // namespace qa
