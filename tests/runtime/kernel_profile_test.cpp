// The CUDA kernel profile: kernel names sort into the kinds of work that the bench's table reports,
// and on a GPU a profiled matrix product shows up as matmul time.
#include "qa/runtime/kernel_profile.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "qa/cli/bench_command.hpp"

namespace qa {
namespace {

TEST(KernelProfile, NamesOfCudaKernelsSortIntoKindsOfWork) {
  EXPECT_EQ(kernel_category("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1"), "matmul");
  EXPECT_EQ(kernel_category("nvjet_tst_128x256_64x4_2x1_v_bz_coopA_TNT"), "matmul");
  EXPECT_EQ(kernel_category("fmha_cutlassB_bf16_aligned_64x64_k64_sm80(PyTorchMemEffAttention::AttentionBackwardKernel)"),
            "attention");
  EXPECT_EQ(kernel_category("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>"),
            "element-wise");
  EXPECT_EQ(kernel_category("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float>>"), "reduction");
  EXPECT_EQ(kernel_category("void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float>"), "softmax");
  EXPECT_EQ(kernel_category("void at::native::(anonymous namespace)::indexSelectLargeIndex<float>"), "embedding/indexing");
  EXPECT_EQ(kernel_category("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamWMathFunctor>"),
            "optimizer");
  EXPECT_EQ(kernel_category("Memcpy DtoD (Device -> Device)"), "copy/fill");
  EXPECT_EQ(kernel_category("some_custom_kernel"), "other");
}

TEST(KernelProfile, CategoriesSumTheirKernels) {
  const std::vector<OpTime> kernels = {{"sm90_xmma_gemm_a", 3, 5.0, 5.0},
                                       {"vectorized_elementwise_kernel<mul>", 10, 2.0, 2.0},
                                       {"nvjet_tst_b", 2, 1.0, 1.0}};
  const auto c = by_kernel_category(kernels);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].name, "matmul");
  EXPECT_EQ(c[0].calls, 5);
  EXPECT_DOUBLE_EQ(c[0].self_ms, 6.0);
  EXPECT_EQ(c[1].name, "element-wise");
  const std::string table = format_op_table(c, 10.0, 2, "kind of kernel", "(GPU idle)");
  EXPECT_NE(table.find("(GPU idle)"), std::string::npos) << table;
  EXPECT_NE(table.find("kind of kernel"), std::string::npos) << table;
}

TEST(KernelProfile, LaunchingOperatorsAreLabelledWithShapesAndAutogradNode) {
  EXPECT_EQ(launching_op_label("aten::add_", {{16384, 768}, {16384, 768}, {}}, ""), "aten::add_ [16384, 768] [16384, 768] []");
  EXPECT_EQ(launching_op_label("aten::mul", {{8, 4}}, "MulBackward0"), "aten::mul [8, 4] in MulBackward0");
  // At most four inputs; a kernel launched by the autograd node itself is not "in" itself.
  EXPECT_EQ(launching_op_label("aten::cat", {{1}, {2}, {3}, {4}, {5}}, ""), "aten::cat [1] [2] [3] [4]");
  EXPECT_EQ(launching_op_label("autograd::engine::evaluate_function: MmBackward0", {}, "MmBackward0"),
            "autograd::engine::evaluate_function: MmBackward0");
}

TEST(KernelProfile, BenchOnCudaReportsKernelTimeByKind) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs LibTorch with CUDA and a GPU";
  BenchOptions o;
  o.shape = "demo", o.device = "cuda", o.precision = "bf16";
  o.batch = 8, o.src_len = 64, o.tgt_len = 8, o.steps = 1, o.profile_rows = 5;
  const auto r = run_bench(o);
  double matmul_ms = -1;
  for (const auto& c : r.at("profile_categories")) {
    if (c.at("name") == "matmul") matmul_ms = c.at("gpu_ms").get<double>();
  }
  EXPECT_GT(matmul_ms, 0.0) << r.at("profile_table").get<std::string>();
  EXPECT_EQ(r.at("profile").size(), 5u);
  // The kernels are traced to the operators that launched them: nearly all of the GPU time, and the
  // matrix products to a product operator (aten::mm / addmm / bmm).
  o.profile_rows = 100000;  // every row
  const auto all = run_bench(o);
  double kernel_ms = 0, attributed_ms = 0;
  for (const auto& k : all.at("profile")) kernel_ms += k.at("self_ms").get<double>();
  bool product_op = false;
  for (const auto& op : all.at("profile_by_op")) {
    const auto name = op.at("name").get<std::string>();
    if (name.rfind("(no operator)", 0) != 0) attributed_ms += op.at("gpu_ms").get<double>();
    product_op = product_op || name.rfind("aten::mm ", 0) == 0 || name.rfind("aten::addmm ", 0) == 0 ||
                 name.rfind("aten::bmm ", 0) == 0;
  }
  EXPECT_GT(attributed_ms, 0.95 * kernel_ms) << all.at("profile_table").get<std::string>();
  EXPECT_TRUE(product_op) << all.at("profile_table").get<std::string>();
}

}  // namespace
}  // namespace qa
