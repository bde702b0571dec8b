// Graceful stops: SIGTERM (scheduler time limit, pre-emption), SIGINT (Ctrl-C) and SIGUSR1 (Slurm
// `--signal`) only set a flag; the training loop finishes its optimizer step, writes a checkpoint and
// exits with ExitCode::kStopped. A second SIGINT exits at once (status 130) without touching files.
// SIGXFSZ is ignored so that exceeding a file-size limit is a failed write (EFBIG), not a crash.
#pragma once

namespace qa {

void install_stop_signal_handlers();
// The signal that asked to stop (0: none yet).
int stop_signal();
// Forgets a requested stop (tests).
void clear_stop_signal();
// "SIGTERM", "SIGINT", ...
const char* signal_name(int sig);

}  // namespace qa
