// Device description and caching-allocator figures: real numbers on a CUDA build with a GPU,
// nothing (and no fake numbers) elsewhere.
#include "qa/runtime/cuda_memory.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace qa {
namespace {

TEST(CudaMemory, EmptyWithoutCuda) {
  if (built_with_cuda() && torch::cuda::is_available()) GTEST_SKIP() << "a GPU is present";
  EXPECT_FALSE(cuda_memory_stats(0).has_value());
  EXPECT_TRUE(cuda_memory_fields(0).empty());
  EXPECT_EQ(describe_cuda_device(0), "cuda:0 (no device information)");
}

TEST(CudaMemory, AllocatorPeakSeesATensor) {
  if (!built_with_cuda() || !torch::cuda::is_available()) GTEST_SKIP() << "needs LibTorch with CUDA and a GPU";
  const auto info = cuda_device_info(0);
  ASSERT_TRUE(info.has_value());
  EXPECT_FALSE(info->name.empty());
  EXPECT_GT(info->total_mib, 1000.0);
  EXPECT_GT(info->free_mib, 0.0);
  EXPECT_LE(info->free_mib, info->total_mib);
  EXPECT_NE(describe_cuda_device(0).find(info->name), std::string::npos);
  {
    auto t = torch::empty({64 * 1024 * 1024 / 4}, torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat));
    torch::cuda::synchronize();
    const auto s = cuda_memory_stats(0);
    ASSERT_TRUE(s.has_value());
    EXPECT_GE(s->peak_allocated_mib, 64.0);
    EXPECT_GE(s->reserved_mib, 64.0);
    EXPECT_GE(s->peak_reserved_mib, s->reserved_mib);
  }
  const auto j = cuda_memory_fields(0);
  EXPECT_TRUE(j.contains("cuda_peak_allocated_mb") && j.contains("cuda_reserved_mb")) << j.dump();
  EXPECT_FALSE(cuda_memory_stats(1 << 20).has_value());  // no such device
}

}  // namespace
}  // namespace qa
