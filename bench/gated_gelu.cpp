// The feed-forward block's gated GELU on the CPU, forward and backward, two ways in one run: the
// composite the model used before (widen to fp32, gelu, mul; under bf16 the products' outputs are
// widened first and the result narrowed for the next product) against qa::fused_gated_gelu (one pass
// each way, in the products' type). Alternating, as the other micro-benchmarks; the ratios, fp32 and
// bf16, are the result.
//
//   qa-bench-gated-gelu [--rows 2048] [--d-ff 1024] [--steps 20] [--threads 2]
#include <cstdio>
#include <string>

#include <torch/torch.h>

#include "compare.hpp"
#include "qa/model/fused_gated_gelu.hpp"

namespace {

// As FeedForwardImpl::forward runs it between the products, then the backward pass.
void step(bool fused, const torch::Tensor& a0, const torch::Tensor& b0, const torch::Tensor& grad) {
  auto a = a0.detach().requires_grad_(true), b = b0.detach().requires_grad_(true);
  const auto h = fused ? qa::fused_gated_gelu(a, b)
                       : (torch::gelu(a.to(torch::kFloat), "tanh") * b.to(torch::kFloat)).to(a0.scalar_type());
  h.backward(grad);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 2048, d_ff = 1024, steps = 20, threads = 2;
  qa::bench::parse_options(argc, argv, "qa-bench-gated-gelu",
                           {{"--rows", &rows}, {"--d-ff", &d_ff}, {"--steps", &steps}, {"--threads", &threads}});
  torch::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(0);
  std::printf("gated GELU, %lld x %lld, %lld threads, forward + backward (median of %lld):\n", static_cast<long long>(rows),
              static_cast<long long>(d_ff), static_cast<long long>(threads), static_cast<long long>(steps));
  std::string json = "{";
  for (const auto type : {torch::kFloat, torch::kBFloat16}) {
    const auto a = torch::randn({rows, d_ff}).to(type), b = torch::randn({rows, d_ff}).to(type);
    const auto grad = torch::randn({rows, d_ff}).to(type);
    const auto r = qa::bench::compare(steps, [&] { step(false, a, b, grad); }, [&] { step(true, a, b, grad); });
    const char* name = type == torch::kFloat ? "fp32" : "bf16";
    std::printf("  %s: composite (casts, gelu, mul) %8.2f ms, qa::fused_gated_gelu %8.2f ms, ratio %.2fx\n", name,
                r.first_ms, r.second_ms, r.ratio());
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s\"%s\": {\"composite_ms\": %.3f, \"fused_ms\": %.3f, \"ratio\": %.4f}",
                  json.size() > 1 ? ", " : "", name, r.first_ms, r.second_ms, r.ratio());
    json += buf;
  }
  std::printf("%s}\n", json.c_str());
  return 0;
}
