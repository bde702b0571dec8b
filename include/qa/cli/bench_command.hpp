// `qa-train bench`: times training steps (forward, backward, AdamW) and greedy generation of a named
// T5 shape on random tokens, and reports throughput, memory and model FLOP utilisation (MFU) against
// the matrix-product peak of the same device and precision, measured in the same run.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace qa {

struct BenchOptions {
  std::string shape = "flan-t5-small";  // flan-t5-small | flan-t5-base | demo
  int64_t batch = 8;
  int64_t src_len = 256;
  int64_t tgt_len = 32;
  int64_t steps = 5;   // timed steps (after one warm-up step)
  std::string device = "cpu";
  std::string precision = "fp32";  // fp32 | bf16 (autocast)
  int64_t threads = 0;
  int64_t profile_rows = 0;  // > 0: profile one more step: top ops by self time (CPU, after a discarded profiled step), top kernels by GPU time (CUDA)
  bool activation_checkpointing = false;  // recompute block activations in backward (T5ModelImpl)
  bool cuda_graphs = false;  // replay the forward and backward pass from a CUDA graph (train.cuda_graphs)
  std::string attention = "auto";  // auto (fused kernels on CUDA, explicit products on the CPU) | fused | explicit
  std::string stacked_projections = "auto";  // auto | on | off: see StackedProjections (model/t5.hpp)
  std::string cpu_gemm = "auto";  // auto (oneDNN for fp32 backward products and long forward ones, all forward ones where the BLAS is slow: model/onednn_linear) | blas
};

// Runs the benchmark; returns {"shape", "tokens_per_sec", "ms_per_step", "peak_mem_mb", "mfu",
// "blas_core", "step_tflops", "peak_tflops", "gen_tokens_per_sec", "activation_checkpointing", "cuda_graphs", ...}; with profile_rows,
// "profile" (the top ops of one profiled step: name, calls, self_ms; on CUDA its kernels, self_ms = GPU time),
// "profile_categories" (CUDA: GPU time by kind of kernel), "profile_by_op" (CUDA: GPU time by launching
// operator, its input shapes and autograd node) and "profile_table" (text); "page_faults_per_step"
// (minor page faults per timed step) and, on the CPU with profile_rows, "profile_page_faults" and
// "profile_warmup_page_faults" (those of the reported profiled step and of the discarded one before it).
nlohmann::json run_bench(const BenchOptions& options);

// Model FLOPs of one training step of a named shape (model/flops.hpp says how they are counted).
double training_step_flops(const std::string& shape, int64_t batch, int64_t src_len, int64_t tgt_len);

}  // namespace qa
