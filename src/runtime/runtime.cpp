#include "qa/runtime/runtime.hpp"

#include <dlfcn.h>
#include <sched.h>
#include <sys/resource.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <thread>

#include "qa/runtime/blas.hpp"
#include "qa/runtime/torch_compat.hpp"
#include "qa/util/error.hpp"

namespace qa {

int configure_threads(int64_t requested) {
  int n = static_cast<int>(requested);
  if (n <= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    // The affinity mask respects taskset / cgroup cpusets; hardware_concurrency() would not.
    n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : static_cast<int>(std::thread::hardware_concurrency());
    if (n <= 0) n = 1;
  }
  torch::set_num_threads(n);
  return torch::get_num_threads();
}

int own_kernel_threads() {
  std::atomic<uint64_t> seen{0};
  at::parallel_for(0, 4096, 1, [&](int64_t, int64_t) { seen.fetch_or(uint64_t{1} << (at::get_thread_num() % 64)); });
  return __builtin_popcountll(seen.load());
}

std::string resolve_device(const std::string& requested) {
  const bool cuda = torch::cuda::is_available();
  if (requested == "cuda" && !cuda) {
    throw Error("runtime.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'", ExitCode::kUsage);
  }
  if (requested == "cpu") return "cpu";
  return cuda ? "cuda" : "cpu";
}

std::string blas_core_name() {
  using CoreName = char* (*)();
  auto fn = reinterpret_cast<CoreName>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!fn) return "";
  const char* name = fn();
  return name ? name : "";
}

bool cpu_has_avx512() {
#if defined(__x86_64__)
  static const bool avx512 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return avx512;
#else
  return false;
#endif
}

bool blas_kernel_older_than_cpu() {
  if (!cpu_has_avx512()) return false;
  const std::string core = blas_core_name();
  return core.empty() || core == "Prescott" || core == "Core2" || core == "Nehalem" || core == "Haswell" || core == "Zen";
}

std::string blas_hint() {
  const std::string core = blas_core_name();
  if (core.empty() || std::getenv("OPENBLAS_CORETYPE") || !blas_kernel_older_than_cpu()) return "";
  return "OpenBLAS runs its generic '" + core +
         "' kernel on this AVX-512 CPU; fp32 matrix products may be several times faster with "
         "OPENBLAS_CORETYPE=SkylakeX (or SapphireRapids) in the environment";
}

std::string torch_version() { return std::string("LibTorch ") + TORCH_VERSION; }

double matmul_peak_flops(const std::string& device_name, bool bf16, int64_t n) {
  const torch::Device device(device_name);
  auto opts = torch::TensorOptions().device(device).dtype(bf16 ? torch::kBFloat16 : torch::kFloat);
  auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
  // The best of several products after a warm-up one: on a shared or frequency-scaling machine single
  // products vary by 2x (and oneDNN's first bf16 products are slow), so keep going for at least 8
  // products and 0.4 s.
  const auto best_of = [&](const std::function<void()>& product) {
    double best = 0, spent = 0;
    for (int i = 0; i < 64 && (i < 9 || spent < 0.4); ++i) {
      if (device.is_cuda()) torch::cuda::synchronize();
      const auto t0 = std::chrono::steady_clock::now();
      product();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      spent += s;
      if (i > 0) best = std::max(best, 2.0 * static_cast<double>(n) * n * n / s);  // the first one warms up
    }
    return best;
  };
  double best = best_of([&] {
    auto c = torch::mm(a, b);
    (void)c.sum().item<double>();  // waits for the device
  });
  // fp32 training on the CPU runs most of its products through oneDNN (model/onednn_linear): the
  // peak is that of the faster of the two kernels.
  if (device.is_cpu() && !bf16 && onednn_sgemm_available()) {
    auto c = torch::empty({n, n}, opts);
    best = std::max(best, best_of([&] {
      onednn_sgemm_row_major(false, false, n, n, n, 1.0f, a.data_ptr<float>(), n, b.data_ptr<float>(), n, 0.0f,
                             c.data_ptr<float>(), n);
    }));
  }
  return best;
}

double peak_rss_mb() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace qa
