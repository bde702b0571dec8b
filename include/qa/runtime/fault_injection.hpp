// Test-only fault injection: QA_TRAIN_FAULT=POINT[:N[:SIGNAL]] sends the process SIGNAL (KILL by
// default, or TERM, INT, USR1) the N-th time (default 1st) it reaches fault_point(POINT), and for a
// stop signal waits until its handler has run. The tests use
// it to kill qa-train at exact places, e.g. halfway through writing a checkpoint. Unset: no effect.
#pragma once

namespace qa {

void fault_point(const char* point);

}  // namespace qa
