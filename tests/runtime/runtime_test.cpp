// The process's compute environment: qa-train's own CPU kernels run on LibTorch's intra-op threads.
#include "qa/runtime/runtime.hpp"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

namespace qa {
namespace {

// at::parallel_for only splits a loop in units compiled with OpenMP: without it, the fused
// attention, RMSNorm, gated GELU and AdamW ran on one of two threads (found in a perf profile).
TEST(Runtime, OwnKernelsRunOnLibTorchsThreads) {
  // Debian's LibTorch (and its OpenBLAS) load the system's OpenMP runtime; a pip wheel's LibTorch
  // its own renamed copy, which the build does not link (CMakeLists.txt).
  if (!dlopen("libgomp.so.1", RTLD_LAZY | RTLD_NOLOAD)) GTEST_SKIP() << "LibTorch does not use the system's libgomp.so.1";
  const int before = at::get_num_threads();
  EXPECT_EQ(configure_threads(2), 2);
  EXPECT_EQ(own_kernel_threads(), 2);
  EXPECT_EQ(configure_threads(1), 1);
  EXPECT_EQ(own_kernel_threads(), 1);
  configure_threads(before);
}

}  // namespace
}  // namespace qa
