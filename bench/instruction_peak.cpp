// The CPU's instruction ceiling for matrix products: the FLOP/s of back-to-back 512-bit fp32 FMAs and
// AVX512-BF16 dot products (what oneDNN's and OpenBLAS's AVX-512 kernels are made of), on one thread
// and on --threads threads. `qa-train bench` measures MFU against the best library product of the run,
// the most a step's products could reach; this says how far that product is from the hardware, and so
// whether a faster kernel could exist. AMX tiles are not measured.
//
//   qa-bench-instruction-peak [--threads 2] [--millions 200]   (iterations of 12 instructions, per thread)
#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "compare.hpp"

namespace {

constexpr int kChains = 12;  // independent accumulators: enough to cover latency x throughput (6 x 2)

__attribute__((target("avx512f"))) float lane_sum(const __m512 (&acc)[kChains]) {
  alignas(64) float lanes[16];
  float sum = 0;
  for (const auto& a : acc) {
    _mm512_store_ps(lanes, a);
    for (const float v : lanes) sum += v;
  }
  return sum;
}

// Each returns the sum of its accumulators so that the loop cannot be dropped.
__attribute__((target("avx512f"))) float fma_loop(int64_t iterations) {
  __m512 acc[kChains];
  for (auto& a : acc) a = _mm512_setzero_ps();
  __m512 x = _mm512_set1_ps(1e-3f);
  const __m512 y = _mm512_set1_ps(1e-3f);
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (auto& a : acc) a = _mm512_fmadd_ps(x, y, a);
    __asm__ volatile("" : "+v"(x));  // x may change: no hoisting
  }
  return lane_sum(acc);
}

__attribute__((target("avx512f,avx512bf16"))) float bf16_dot_loop(int64_t iterations) {
  __m512 acc[kChains];
  for (auto& a : acc) a = _mm512_setzero_ps();
  __m512bh x = (__m512bh)_mm512_set1_epi16(0x3a83);  // ~1e-3 in bf16
  const __m512bh y = x;
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (auto& a : acc) a = _mm512_dpbf16_ps(a, x, y);
    __asm__ volatile("" : "+v"(x));
  }
  return lane_sum(acc);
}

// GFLOP/s of `threads` threads each running `loop`; flop_per_iteration counts one thread's iteration.
double gflops(float (*loop)(int64_t), int64_t iterations, double flop_per_iteration, int threads) {
  std::vector<std::thread> pool;
  std::vector<float> sums(threads);
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { sums[t] = loop(iterations); });
  for (auto& th : pool) th.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  volatile float sink = sums[0];
  (void)sink;
  return threads * iterations * flop_per_iteration / seconds / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t threads = 2, millions = 200;
  qa::bench::parse_options(argc, argv, "qa-bench-instruction-peak", {{"--threads", &threads}, {"--millions", &millions}});
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f")) {
    std::fprintf(stderr, "qa-bench-instruction-peak: this CPU has no AVX-512\n");
    return 1;
  }
  const bool bf16 = __builtin_cpu_supports("avx512bf16");
  const int64_t n = millions * 1'000'000;
  // Per iteration: 12 instructions x 16 lanes, 2 FLOP per FMA lane; a bf16 dot product lane does 2 FMAs.
  const double fma_flop = kChains * 16 * 2.0, dot_flop = kChains * 16 * 4.0;
  const double fp32_1 = gflops(fma_loop, n, fma_flop, 1), fp32_n = gflops(fma_loop, n, fma_flop, static_cast<int>(threads));
  const double bf16_1 = bf16 ? gflops(bf16_dot_loop, n, dot_flop, 1) : 0;
  const double bf16_n = bf16 ? gflops(bf16_dot_loop, n, dot_flop, static_cast<int>(threads)) : 0;
  std::printf("fp32 FMA (512-bit):      %7.1f GFLOP/s on 1 thread, %7.1f on %lld\n", fp32_1, fp32_n,
              static_cast<long long>(threads));
  if (bf16)
    std::printf("bf16 dot (AVX512-BF16):  %7.1f GFLOP/s on 1 thread, %7.1f on %lld\n", bf16_1, bf16_n,
                static_cast<long long>(threads));
  else
    std::printf("bf16 dot: this CPU has no AVX512-BF16\n");
  char bf16_json[32] = "null";
  if (bf16) std::snprintf(bf16_json, sizeof bf16_json, "%.1f", bf16_n);
  std::printf("{\"threads\": %lld, \"fp32_fma_gflops\": %.1f, \"bf16_dot_gflops\": %s}\n", static_cast<long long>(threads),
              fp32_n, bf16_json);
  return 0;
}
