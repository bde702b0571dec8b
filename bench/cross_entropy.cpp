// The token cross-entropy on the CPU, forward and backward, two ways in one run: LibTorch's composite
// (cross_entropy: log_softmax and nll_loss, summed over the labels that are not -100) against
// qa::fused_cross_entropy_sum (one pass each way). Alternating, as the other micro-benchmarks; the
// ratio is the result. The default shape is flan-t5-small's logits at the bench's batch 8 x 32 targets.
//
//   qa-bench-cross-entropy [--rows 256] [--vocab 32128] [--steps 20] [--threads 2]
#include <cstdio>

#include <torch/torch.h>

#include "compare.hpp"
#include "qa/runtime/host_memory.hpp"
#include "qa/train/fused_cross_entropy.hpp"

namespace {

constexpr int64_t kIgnore = -100;

void step(bool fused, const torch::Tensor& logits0, const torch::Tensor& labels) {
  auto logits = logits0.detach().requires_grad_(true);
  const auto loss = fused ? qa::fused_cross_entropy_sum(logits, labels, kIgnore)
                          : torch::nn::functional::cross_entropy(
                                logits, labels,
                                torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnore).reduction(torch::kSum));
  loss.backward();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 256, vocab = 32128, steps = 20, threads = 2;
  qa::bench::parse_options(argc, argv, "qa-bench-cross-entropy",
                           {{"--rows", &rows}, {"--vocab", &vocab}, {"--steps", &steps}, {"--threads", &threads}});
  qa::keep_freed_host_memory();  // as qa-train runs: freed [rows, vocab] matrices reuse their pages
  torch::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(0);
  const auto logits = torch::randn({rows, vocab}) * 4.0;
  auto labels = torch::randint(0, vocab, {rows}, torch::kLong);
  labels.index_put_({torch::indexing::Slice(0, rows / 8)}, kIgnore);  // some padding, as real batches have
  const auto r = qa::bench::compare(steps, [&] { step(false, logits, labels); }, [&] { step(true, logits, labels); });
  std::printf("cross-entropy, %lld x %lld fp32 logits, %lld threads, forward + backward (median of %lld):\n",
              static_cast<long long>(rows), static_cast<long long>(vocab), static_cast<long long>(threads),
              static_cast<long long>(steps));
  std::printf("  LibTorch (log_softmax, nll_loss) %8.2f ms, qa::fused_cross_entropy_sum %8.2f ms, ratio %.2fx\n",
              r.first_ms, r.second_ms, r.ratio());
  std::printf("{\"composite_ms\": %.3f, \"fused_ms\": %.3f, \"ratio\": %.4f}\n", r.first_ms, r.second_ms, r.ratio());
  return 0;
}
