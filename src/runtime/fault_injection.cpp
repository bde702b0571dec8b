#include "qa/runtime/fault_injection.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "qa/runtime/signals.hpp"

namespace qa {
namespace {

struct Fault {
  std::string point;
  long count = 1;
  int sig = SIGKILL;
};

Fault parse(const char* env) {
  Fault f;
  if (!env || !*env) return f;
  std::string s(env);
  auto c1 = s.find(':');
  f.point = s.substr(0, c1);
  if (c1 == std::string::npos) return f;
  auto c2 = s.find(':', c1 + 1);
  f.count = std::strtol(s.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1).c_str(), nullptr, 10);
  if (c2 != std::string::npos) {
    const std::string name = s.substr(c2 + 1);
    f.sig = name == "TERM" ? SIGTERM : name == "INT" ? SIGINT : name == "USR1" ? SIGUSR1 : SIGKILL;
  }
  return f;
}

}  // namespace

void fault_point(const char* point) {
  static Fault fault = parse(std::getenv("QA_TRAIN_FAULT"));
  static long hits = 0;
  if (fault.point.empty() || fault.point != point) return;
  if (++hits != fault.count) return;
  if (fault.sig == SIGKILL) ::raise(SIGKILL);
  // To the process, as a scheduler sends it: the threads here block the stop signals, and one thread
  // receives them (runtime/signals). Waits until its handler has run, so that the stop is seen at
  // this point, not a step later.
  ::kill(::getpid(), fault.sig);
  await_stop_signal(fault.sig, std::chrono::seconds(5));
}

}  // namespace qa
