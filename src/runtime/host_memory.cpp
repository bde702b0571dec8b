#include "qa/runtime/host_memory.hpp"

#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace qa {

std::string keep_freed_host_memory() {
#if defined(__GLIBC__)
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"}) {
    if (std::getenv(name) != nullptr) return "";
  }
  // mallopt's values are ints; a fixed threshold also turns off glibc's adaptive one.
  constexpr int kMmapThreshold = 1 << 30;
  constexpr int kTrimThreshold = 0x7fffffff;
  if (mallopt(M_MMAP_THRESHOLD, kMmapThreshold) != 1 || mallopt(M_TRIM_THRESHOLD, kTrimThreshold) != 1) return "";
  return "glibc keeps freed memory for reuse (mmap threshold 1 GiB, no trimming)";
#else
  return "";
#endif
}

}  // namespace qa
