// The per-op profile: calls are counted, nested ops give their time to the outer op's total and
// keep their own as self time, and the table shows the top ops.
#include "qa/runtime/op_profile.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "qa/cli/bench_command.hpp"
#include "qa/model/onednn_linear.hpp"
#include "qa/runtime/blas.hpp"

namespace qa {
namespace {

const OpTime* find(const std::vector<OpTime>& ops, const std::string& name) {
  auto it = std::find_if(ops.begin(), ops.end(), [&](const OpTime& t) { return t.name == name; });
  return it == ops.end() ? nullptr : &*it;
}

TEST(OpProfile, CountsCallsAndSplitsSelfFromTotal) {
  auto a = torch::randn({256, 256}), b = torch::randn({256, 256});
  OpProfiler p;
  p.start();
  for (int i = 0; i < 3; ++i) a = torch::matmul(a, b) / 16.0;  // matmul calls mm inside
  (void)torch::relu(a);
  const auto ops = p.stop();
  const OpTime* matmul = find(ops, "aten::matmul");
  const OpTime* mm = find(ops, "aten::mm");
  ASSERT_TRUE(matmul && mm);
  EXPECT_EQ(matmul->calls, 3);
  EXPECT_EQ(mm->calls, 3);
  EXPECT_GT(mm->self_ms, 0.0);
  EXPECT_GE(matmul->total_ms + 1e-9, mm->self_ms + matmul->self_ms);  // mm runs inside matmul
  EXPECT_EQ(mm->total_ms, 0.0);                                        // never outermost
  for (std::size_t i = 1; i < ops.size(); ++i) EXPECT_GE(ops[i - 1].self_ms, ops[i].self_ms);
  const std::string table = format_op_table(ops, 1000.0, 2);
  EXPECT_NE(table.find(ops[0].name), std::string::npos) << table;
  EXPECT_NE(table.find("(other operators)"), std::string::npos) << table;
  EXPECT_NE(table.find("(outside any operator)"), std::string::npos) << table;
}

TEST(OpProfile, BenchReportsTheTopOpsOfAStep) {
  BenchOptions o;
  o.shape = "demo";
  o.batch = 2, o.src_len = 16, o.tgt_len = 4, o.steps = 1, o.threads = 1, o.profile_rows = 5;
  const auto r = run_bench(o);
  ASSERT_EQ(r.at("profile").size(), 5u) << r.dump();
  double sum = 0;
  for (const auto& op : r.at("profile")) sum += op.at("self_ms").get<double>();
  EXPECT_GT(sum, 0.0);
  EXPECT_NE(r.at("profile_table").get<std::string>().find("aten::"), std::string::npos);
  // The reported step is the second profiled one; both steps' page faults are counted, as the timed ones'.
  EXPECT_GE(r.at("profile_page_faults").get<int64_t>(), 0) << r.dump();
  EXPECT_GE(r.at("profile_warmup_page_faults").get<int64_t>(), 0) << r.dump();
  EXPECT_GE(r.at("page_faults_per_step").get<double>(), 0.0) << r.dump();
}

TEST(OpProfile, WithoutAProfileNoProfiledStepIsCounted) {
  BenchOptions o;
  o.shape = "demo";
  o.batch = 2, o.src_len = 16, o.tgt_len = 4, o.steps = 1, o.threads = 1;
  const auto r = run_bench(o);
  EXPECT_TRUE(r.at("profile").empty());
  EXPECT_TRUE(r.at("profile_page_faults").is_null()) << r.dump();
  EXPECT_TRUE(r.at("profile_warmup_page_faults").is_null()) << r.dump();
  EXPECT_GE(r.at("page_faults_per_step").get<double>(), 0.0) << r.dump();
}

// qa-train's own CPU kernels (no LibTorch operators) are named in the profile, not left in
// "(outside any operator)": the AdamW step, RMSNorm, attention's products, the projections.
TEST(OpProfile, OwnCpuKernelsAreNamed) {
  BenchOptions o;
  o.shape = "demo";
  o.batch = 2, o.src_len = 16, o.tgt_len = 4, o.steps = 1, o.threads = 1, o.profile_rows = 100000;
  const auto r = run_bench(o);
  std::set<std::string> names;
  for (const auto& op : r.at("profile")) names.insert(op.at("name").get<std::string>());
  std::vector<std::string> own = {"qa::adamw_step_cpu", "qa::fused_rms_norm"};
  if (blas_sgemm_available()) own.push_back("qa::fused_attention");  // else separate operators
  if (onednn_linear_usable()) own.push_back("qa::onednn_linear");   // else LibTorch's products
  for (const auto& name : own) {
    EXPECT_EQ(names.count(name), 1u) << name << " missing from\n" << r.at("profile_table").get<std::string>();
  }
  EXPECT_EQ(r.at("cpu_gemm"), !onednn_linear_usable() ? "blas" : onednn_linear_forward() ? "onednn" : "onednn_except_short_forward");
}

// In bf16 the projections are model/bf16_linear's where oneDNN's bf16 product runs, and the JSON says so.
TEST(OpProfile, Bf16ProjectionsAreNamed) {
  BenchOptions o;
  o.shape = "demo";
  o.precision = "bf16";
  o.batch = 2, o.src_len = 16, o.tgt_len = 4, o.steps = 1, o.threads = 1, o.profile_rows = 100000;
  const auto r = run_bench(o);
  std::set<std::string> names;
  for (const auto& op : r.at("profile")) names.insert(op.at("name").get<std::string>());
  const bool bf16_gemm = onednn_gemm_bf16_available();
  EXPECT_EQ(names.count("qa::bf16_linear"), bf16_gemm ? 1u : 0u) << r.at("profile_table").get<std::string>();
  EXPECT_EQ(r.at("cpu_gemm"), bf16_gemm ? "onednn_bf16" : "blas");
}

}  // namespace
}  // namespace qa
