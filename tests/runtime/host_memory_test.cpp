// After keep_freed_host_memory, a large block freed and allocated again reuses its pages: touching it
// the second time costs (almost) no page faults. Without it glibc maps a 64 MiB block afresh each time.
#include "qa/runtime/host_memory.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstddef>
#include <cstdlib>

namespace qa {
namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Minor page faults taken while allocating, writing every page of and freeing `bytes`. The writes go
// through a volatile pointer so that the compiler cannot drop the block altogether.
long faults_of_one_block(std::size_t bytes) {
  const long before = minor_faults();
  void* p = std::malloc(bytes);
  EXPECT_NE(p, nullptr);
  volatile char* bytes_of = static_cast<char*>(p);
  for (std::size_t i = 0; i < bytes; i += 4096) bytes_of[i] = 1;
  std::free(p);
  return minor_faults() - before;
}

TEST(HostMemory, AFreedLargeBlockIsReusedWithoutFaultingItsPagesAgain) {
#if !defined(__GLIBC__)
  GTEST_SKIP() << "only glibc's allocator is configured";
#endif
  if (malloc_settings_from_environment()) GTEST_SKIP() << "glibc's malloc settings come from the environment here";
  constexpr std::size_t kBytes = 64u << 20;  // above glibc's largest adaptive mmap threshold (32 MiB)
  // As glibc comes, every round maps the block afresh and faults its pages in again (one fault per
  // 4 KiB page, or per 2 MiB where transparent huge pages are on).
  faults_of_one_block(kBytes);
  const long as_glibc_comes = faults_of_one_block(kBytes);
  EXPECT_GE(as_glibc_comes, 16);
  EXPECT_TRUE(keep_freed_host_memory());
  faults_of_one_block(kBytes);  // the first round after the change grows the heap: these pages fault
  EXPECT_LT(faults_of_one_block(kBytes) * 8, as_glibc_comes);
}

}  // namespace
}  // namespace qa
