#include "qa/runtime/signals.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace qa {
namespace {

bool blocked_here(int sig) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, sig) == 1;
}

}  // namespace

// One process per test (ctest): routing blocks the signals in this process's threads for good.
TEST(StopSignals, AreBlockedInTheCallerAndInLaterThreadsAndHandledOnTheirOwnThread) {
  route_stop_signals_to_one_thread();
  install_stop_signal_handlers();
  clear_stop_signal();
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) EXPECT_TRUE(blocked_here(sig)) << sig;
  bool later_thread_blocks = false;
  std::thread([&] { later_thread_blocks = blocked_here(SIGTERM) && blocked_here(SIGINT) && blocked_here(SIGUSR1); }).join();
  EXPECT_TRUE(later_thread_blocks);
  // Sent to the process, as a scheduler sends it: no thread here can take it, the routed one does.
  ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);
  EXPECT_TRUE(await_stop_signal(SIGUSR1, std::chrono::seconds(5)));
  EXPECT_STREQ(signal_name(stop_signal()), "SIGUSR1");
  clear_stop_signal();
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  EXPECT_TRUE(await_stop_signal(SIGTERM, std::chrono::seconds(5)));
  clear_stop_signal();
}

}  // namespace qa
