// Graceful stops: SIGTERM (scheduler time limit, pre-emption), SIGINT (Ctrl-C) and SIGUSR1 (Slurm
// `--signal`) only set a flag; the training loop finishes its optimizer step, writes a checkpoint and
// exits with ExitCode::kStopped. A second SIGINT exits at once (status 130) without touching files.
// SIGXFSZ is ignored so that exceeding a file-size limit is a failed write (EFBIG), not a crash.
#pragma once

#include <chrono>

namespace qa {

// First thing in main, before any other thread exists: blocks the stop signals in the calling thread,
// and so in every thread it starts later (OpenMP's, the autograd engine's, the prefetcher's), and
// starts one thread that does nothing but receive them. A signal sent to the process then interrupts
// only that thread. Handled on whichever thread the kernel picked, a stop signal mid-step now and then
// corrupted the heap (an abort inside oneDNN's sgemm in 5 of 58 runs of the fault-tolerance test's
// external SIGTERM; 0 of 90 routed here), most likely the handler's frame written over stack that a
// JIT kernel was using. Until install_stop_signal_handlers the signals keep their default action.
void route_stop_signals_to_one_thread();

void install_stop_signal_handlers();
// The signal that asked to stop (0: none yet).
int stop_signal();
// Waits (at most `limit`) until the handler has recorded `sig`, which may run on the routed thread
// after kill() returns; whether it has.
bool await_stop_signal(int sig, std::chrono::milliseconds limit);
// Forgets a requested stop (tests).
void clear_stop_signal();
// "SIGTERM", "SIGINT", ...
const char* signal_name(int sig);

}  // namespace qa
