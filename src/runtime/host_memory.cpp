#include "qa/runtime/host_memory.hpp"

#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <initializer_list>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace qa {

bool malloc_settings_from_environment() {
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return true;
  }
  // GLIBC_TUNABLES also tunes other parts of glibc (glibc.cpu.*, glibc.pthread.*): only its malloc
  // tunables are the user's malloc settings.
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  return tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr;
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

int64_t minor_page_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

}  // namespace qa
