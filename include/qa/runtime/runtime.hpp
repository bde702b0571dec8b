// The process's compute environment: intra-op threads, device choice, BLAS kernel in use.
#pragma once

#include <cstdint>
#include <string>

namespace qa {

// Sets LibTorch's intra-op threads: `requested` > 0, else every CPU this process may run on.
// Returns the number in effect.
int configure_threads(int64_t requested);

// How many threads qa-train's own CPU kernels (the fused attention, RMSNorm, gated GELU, AdamW:
// at::parallel_for in its units) run on: LibTorch's intra-op threads where the build compiled them
// with LibTorch's OpenMP runtime (CMakeLists.txt, QA_OPENMP), else 1. Measured by running a loop.
int own_kernel_threads();

// "cpu" or "cuda" for a config value auto | cpu | cuda; cuda without a usable GPU is an error.
std::string resolve_device(const std::string& requested);

// OpenBLAS's kernel name ("Prescott", "SkylakeX", ...) when OpenBLAS is loaded, else "".
std::string blas_core_name();
// Whether this is an x86-64 CPU with AVX-512 (checked once).
bool cpu_has_avx512();
// On a CPU with AVX-512: whether LibTorch's fp32 products run below what the CPU can do, through
// OpenBLAS on an older generic kernel ("Prescott", "Haswell", ...: ~50-80 GFLOP/s on 2 cores where
// oneDNN runs ~200) or through a BLAS that is not OpenBLAS (Debian's default libblas.so.3 is the
// reference BLAS, ~100x slower). False on other CPUs.
bool blas_kernel_older_than_cpu();
// A one-line hint when OpenBLAS runs a generic kernel on a CPU that has AVX-512, else "".
std::string blas_hint();

// "LibTorch 1.13.0".
std::string torch_version();

// Peak resident memory of this process so far, in MiB (getrusage).
double peak_rss_mb();

// The matrix-product peak of `device` ("cpu" / "cuda") in FLOP/s: the best of a few n x n products
// in fp32 or bf16 (in fp32 on the CPU, the faster of LibTorch's product and oneDNN's sgemm). The
// denominator of MFU, measured in the same process as what it is compared with.
double matmul_peak_flops(const std::string& device, bool bf16, int64_t n);

}  // namespace qa
