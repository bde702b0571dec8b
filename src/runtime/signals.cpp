#include "qa/runtime/signals.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

namespace qa {
namespace {

std::atomic<int> g_stop{0};

constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGUSR1};

void on_stop_signal(int sig) {
  // Async-signal-safe only: an atomic store, write(2) and _exit(2).
  if (sig == SIGINT && g_stop.load() == SIGINT) {
    static const char msg[] = "\nqa-train: second interrupt: exiting now (checkpoints on disk are untouched)\n";
    ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(130);
  }
  g_stop.store(sig);
}

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kStopSignals) sigaddset(&set, sig);
  return set;
}

}  // namespace

void route_stop_signals_to_one_thread() {
  const sigset_t set = stop_signals();
  // Blocked here, and so in every thread started from here on (they inherit the mask).
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    for (;;) ::pause();  // wakes only to run a handler
  }).detach();
}

void install_stop_signal_handlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : kStopSignals) sigaction(sig, &sa, nullptr);
  signal(SIGXFSZ, SIG_IGN);
}

int stop_signal() { return g_stop.load(); }

bool await_stop_signal(int sig, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (g_stop.load() != sig && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return g_stop.load() == sig;
}

void clear_stop_signal() { g_stop.store(0); }

const char* signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    default: return "a signal";
  }
}

}  // namespace qa
