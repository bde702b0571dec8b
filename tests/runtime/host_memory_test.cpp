// After keep_freed_host_memory, a large block freed and allocated again reuses its pages: touching it
// the second time costs (almost) no page faults. Without it glibc maps a 64 MiB block afresh each time.
#include "qa/runtime/host_memory.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <string>

namespace qa {
namespace {

// Minor page faults taken while allocating, writing every page of and freeing `bytes`. The writes go
// through a volatile pointer so that the compiler cannot drop the block altogether.
int64_t faults_of_one_block(std::size_t bytes) {
  const int64_t before = minor_page_faults();
  void* p = std::malloc(bytes);
  EXPECT_NE(p, nullptr);
  volatile char* bytes_of = static_cast<char*>(p);
  for (std::size_t i = 0; i < bytes; i += 4096) bytes_of[i] = 1;
  std::free(p);
  return minor_page_faults() - before;
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
  const int64_t as_glibc_comes = faults_of_one_block(kBytes);
  EXPECT_GE(as_glibc_comes, 16);
  EXPECT_TRUE(keep_freed_host_memory());
  faults_of_one_block(kBytes);  // the first round after the change grows the heap: these pages fault
  EXPECT_LT(faults_of_one_block(kBytes) * 8, as_glibc_comes);
}

// Sets an environment variable for one scope and restores what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

TEST(HostMemory, OnlyMallocSettingsInTheEnvironmentTakePrecedence) {
  ScopedEnv a("MALLOC_MMAP_THRESHOLD_", nullptr), b("MALLOC_TRIM_THRESHOLD_", nullptr), c("MALLOC_TOP_PAD_", nullptr),
      d("MALLOC_MMAP_MAX_", nullptr), e("GLIBC_TUNABLES", nullptr);
  EXPECT_FALSE(malloc_settings_from_environment());
  {
    ScopedEnv t("GLIBC_TUNABLES", "");
    EXPECT_FALSE(malloc_settings_from_environment());
  }
  {
    ScopedEnv t("GLIBC_TUNABLES", "glibc.cpu.x86_rep_movsb_threshold=4096");
    EXPECT_FALSE(malloc_settings_from_environment());
  }
  {
    ScopedEnv t("GLIBC_TUNABLES", "glibc.cpu.x86_rep_movsb_threshold=4096:glibc.malloc.mmap_max=0");
    EXPECT_TRUE(malloc_settings_from_environment());
  }
  {
    ScopedEnv t("MALLOC_TRIM_THRESHOLD_", "");
    EXPECT_FALSE(malloc_settings_from_environment());
  }
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_"}) {
    ScopedEnv t(name, "1048576");
    EXPECT_TRUE(malloc_settings_from_environment()) << name;
  }
}

}  // namespace
}  // namespace qa
