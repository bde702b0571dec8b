#include "qa/runtime/host_memory.hpp"

#include <cstdlib>
#include <initializer_list>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace qa {

bool malloc_settings_from_environment() {
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

bool keep_freed_host_memory() {
#if defined(__GLIBC__)
  if (malloc_settings_from_environment()) return false;
  // mallopt's values are ints; a fixed threshold also turns off glibc's adaptive one.
  constexpr int kMmapThreshold = 1 << 30;
  constexpr int kTrimThreshold = 0x7fffffff;
  return mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
#else
  return false;
#endif
}

}  // namespace qa
