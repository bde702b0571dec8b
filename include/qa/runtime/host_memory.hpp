// How the process's C allocator treats large freed blocks. A training step allocates and frees the
// same large temporaries (logits, attention scores, their gradients: tens of MB each) every step.
// glibc hands blocks above its mmap threshold (128 KiB, raised adaptively to at most 32 MiB) back to the
// kernel when they are freed, so the next step's copy of the same tensor faults in every page again
// (~36,000 minor faults per flan-t5-small step), and trims the heap's top the same way. Torch-free header.
#pragma once

#include <cstdint>

namespace qa {

// Whether the user has set glibc's own malloc settings in the environment: MALLOC_MMAP_THRESHOLD_,
// MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_ or MALLOC_MMAP_MAX_ to a value, or a glibc.malloc.* tunable
// in GLIBC_TUNABLES (whose other tunables, and empty variables, leave malloc as glibc comes).
bool malloc_settings_from_environment();

// With glibc, keeps freed memory in the process for reuse: large blocks come from the heap (mmap
// threshold 1 GiB) and the heap is not trimmed, so a step's temporaries are not faulted in again. Peak
// RSS rises a little (flan-t5-small: +40 MB in bf16, +140 MB in fp32). Does nothing where glibc is not
// the allocator, or where malloc_settings_from_environment(): the user's settings win. Returns whether
// it changed glibc's settings.
bool keep_freed_host_memory();

// Minor page faults this process has taken so far (getrusage): pages touched for the first time since
// they were mapped. On this machine's VM each costs ~8 us, so counting them shows what the C
// allocator's policy costs without timing anything.
int64_t minor_page_faults();

}  // namespace qa
