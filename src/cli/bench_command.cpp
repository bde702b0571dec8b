#include "qa/cli/bench_command.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "qa/model/flops.hpp"
#include "qa/model/onednn_linear.hpp"
#include "qa/model/t5.hpp"
#include "qa/runtime/cuda_memory.hpp"
#include "qa/runtime/host_memory.hpp"
#include "qa/runtime/kernel_profile.hpp"
#include "qa/runtime/op_profile.hpp"
#include "qa/runtime/runtime.hpp"
#include "qa/runtime/torch_compat.hpp"
#include "qa/train/graphed_micro_steps.hpp"
#include "qa/train/train_step.hpp"
#include "qa/train/optimizer.hpp"
#include "qa/util/error.hpp"

namespace qa {
namespace {

using Clock = std::chrono::steady_clock;

T5Config shape_config(const std::string& shape) {
  T5Config c;
  c.feed_forward_proj = "gated-gelu";
  c.tie_word_embeddings = false;
  c.dropout_rate = 0.0;  // timing: dropout costs little and adds noise
  if (shape == "flan-t5-small") {
    c.vocab_size = 32128, c.d_model = 512, c.d_ff = 1024, c.num_layers = 8, c.num_decoder_layers = 8, c.num_heads = 6,
    c.d_kv = 64;
  } else if (shape == "flan-t5-base") {
    c.vocab_size = 32128, c.d_model = 768, c.d_ff = 2048, c.num_layers = 12, c.num_decoder_layers = 12,
    c.num_heads = 12, c.d_kv = 64;
  } else if (shape == "demo") {  // configs/demo.json with its tokenizer's vocabulary bound
    c.vocab_size = 2000, c.d_model = 128, c.d_ff = 256, c.num_layers = 2, c.num_decoder_layers = 1, c.num_heads = 4,
    c.d_kv = 32;
  } else {
    throw Error("bench: unknown --shape '" + shape + "' (flan-t5-small, flan-t5-base, demo)", ExitCode::kUsage);
  }
  c.derive_activation("bench");
  return c;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

double training_step_flops(const std::string& shape, int64_t batch, int64_t src_len, int64_t tgt_len) {
  return training_flops(shape_config(shape), batch, src_len, tgt_len);
}

nlohmann::json run_bench(const BenchOptions& o) {
  if (o.batch < 1 || o.src_len < 2 || o.tgt_len < 2 || o.steps < 1) {
    throw Error("bench: --batch, --steps must be >= 1 and --src-len, --tgt-len >= 2", ExitCode::kUsage);
  }
  const int threads = configure_threads(o.threads);
  const std::string device_name = resolve_device(o.device);
  // An explicit index, as in training: CUDA queries (allocator figures) need one.
  const torch::Device device = device_name == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  const bool bf16 = o.precision == "bf16";
  const T5Config c = shape_config(o.shape);
  torch::manual_seed(0);
  T5Model model(c);
  model->init_weights(0);
  model->to(device);
  if (o.attention != "auto" && o.attention != "fused" && o.attention != "explicit") {
    throw Error("bench: --attention must be auto, fused or explicit, not '" + o.attention + "'", ExitCode::kUsage);
  }
  model->use_sdpa(o.attention == "auto" ? device.is_cuda() : o.attention == "fused");
  // explicit: separate products, bias addition and softmax, also where the CPU would fuse them
  model->set_fused_cpu_attention(o.attention != "explicit");
  model->train();
  model->set_activation_checkpointing(o.activation_checkpointing);
  if (o.stacked_projections == "on" || o.stacked_projections == "off") {
    model->set_stacked_projections(o.stacked_projections == "on" ? StackedProjections::kOn : StackedProjections::kOff);
  } else if (o.stacked_projections != "auto") {
    throw Error("bench: --stacked-projections must be auto, on or off, not '" + o.stacked_projections + "'", ExitCode::kUsage);
  }
  if (o.cpu_gemm != "auto" && o.cpu_gemm != "blas") {
    throw Error("bench: --cpu-gemm must be auto or blas, not '" + o.cpu_gemm + "'", ExitCode::kUsage);
  }
  set_onednn_linear_enabled(o.cpu_gemm == "auto");
  TrainSection train;
  Optimizer optimizer(model, train);
  auto ids = torch::randint(3, c.vocab_size, {o.batch, o.src_len}, torch::TensorOptions().dtype(torch::kLong)).to(device);
  auto mask = torch::ones_like(ids);
  auto labels = torch::randint(3, c.vocab_size, {o.batch, o.tgt_len}, torch::TensorOptions().dtype(torch::kLong)).to(device);
  auto dec_in = torch::cat({torch::zeros({o.batch, 1}, labels.options()), labels.slice(1, 0, o.tgt_len - 1)}, 1);
  const double tokens = static_cast<double>(o.batch * (o.src_len + o.tgt_len));
  Batch batch;
  batch.input_ids = ids, batch.attention_mask = mask, batch.decoder_input_ids = dec_in, batch.labels = labels;
  batch.source_tokens = ids.numel(), batch.target_tokens = labels.numel();
  const MicroStepSpec spec = make_micro_step_spec(c, device, bf16, 0.0);
  const double denominator = static_cast<double>(labels.numel());
  const auto denominator_tensor = torch::scalar_tensor(denominator, torch::TensorOptions().device(device));
  std::unique_ptr<GraphedMicroSteps> graphs;
  if (o.cuda_graphs) {
    if (!device.is_cuda()) throw Error("bench: --cuda-graphs needs --device cuda", ExitCode::kUsage);
    graphs = std::make_unique<GraphedMicroSteps>(model, spec);
  }

  // One training step, as training does it (train_step.hpp); returns its wall time in seconds.
  const auto train_step = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
    const auto t0 = Clock::now();
    // With graphs, the first step records the graph (after running eagerly); the others replay it.
    const torch::Tensor loss = graphs ? graphs->forward_backward(batch, denominator)
                                      : forward_backward(model, batch, spec, denominator_tensor);
    if (device.is_cuda()) {  // as training does there: clip and update decided on the GPU
      optimizer.clip_and_step_on_device(1.0, 1e-4, loss.detach());
    } else {
      optimizer.clip_grad_norm(1.0);
      optimizer.step(1e-4);
    }
    optimizer.zero_grad();
    (void)loss.item<double>();  // waits for the device
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  // The matmul peak is measured on both sides of the timed steps and the higher one kept: on a shared
  // machine one measurement alone came out at half the usual peak (an MFU above 100%).
  const int64_t peak_n = device.is_cuda() ? 8192 : 2048;
  const double peak_before = matmul_peak_flops(device_name, bf16, peak_n);
  std::vector<double> step_seconds;
  int64_t faults_at_first_timed = 0;
  for (int64_t s = 0; s <= o.steps; ++s) {  // step 0 warms up (allocations, oneDNN kernel choice)
    if (s == 1) faults_at_first_timed = minor_page_faults();
    const double seconds = train_step();
    if (s > 0) step_seconds.push_back(seconds);
  }
  const double faults_per_step = static_cast<double>(minor_page_faults() - faults_at_first_timed) / static_cast<double>(o.steps);
  const double step = median(step_seconds);
  nlohmann::json profile = nlohmann::json::array();
  std::string profile_table;
  nlohmann::json profile_categories = nlohmann::json::array();
  nlohmann::json profile_by_op = nlohmann::json::array();  // CUDA only
  nlohmann::json profile_faults, profile_warmup_faults;  // CPU only
  if (o.profile_rows > 0) {  // after the timed steps, so that recording does not slow them
    const auto rows = static_cast<std::size_t>(o.profile_rows);
    std::vector<OpTime> ops;
    double seconds = 0;
    if (device.is_cuda()) {  // the host only queues work there: GPU time per kernel is what counts
      KernelProfiler profiler;
      profiler.start();
      seconds = train_step();
      const KernelProfile kernels = profiler.stop();
      ops = kernels.kernels;
      const auto categories = by_kernel_category(ops);
      profile_table = format_op_table(ops, seconds * 1000, rows, "CUDA kernel (GPU time)", "(GPU idle)") + "\n" +
                      format_op_table(kernels.by_op, seconds * 1000, rows, "launching operator (GPU time)", "(GPU idle)") +
                      "\n" + format_op_table(categories, seconds * 1000, categories.size(), "kind of kernel", "(GPU idle)");
      for (const auto& c : categories) profile_categories.push_back({{"name", c.name}, {"calls", c.calls}, {"gpu_ms", c.self_ms}});
      for (std::size_t i = 0; i < kernels.by_op.size() && i < rows; ++i) {
        const auto& op = kernels.by_op[i];
        profile_by_op.push_back({{"name", op.name}, {"calls", op.calls}, {"gpu_ms", op.self_ms}});
      }
    } else {
      // Two profiled steps, the first discarded: its recording's own allocations leave the heap laid
      // out so that the step's large temporaries no longer fit the blocks the timed steps freed, and
      // fault in fresh pages (flan-t5-small bf16: ~38,000 faults, ~+260 ms over the timed steps'
      // median, charged to whichever ops allocate: in fp32 the additions of the attention bias's
      // gradients showed 16% of the step instead of 3%).
      // The second usually finds the heap as the first left it (bf16: 0 faults); fp32 runs sometimes
      // still fault, so --json reports both steps' faults (bench/RESULTS.md, fifteenth CPU round).
      for (int pass = 0; pass < 2; ++pass) {
        const int64_t faults_before = minor_page_faults();
        OpProfiler profiler;
        profiler.start();
        seconds = train_step();
        ops = profiler.stop();
        (pass == 0 ? profile_warmup_faults : profile_faults) = minor_page_faults() - faults_before;
      }
      profile_table = format_op_table(ops, seconds * 1000, rows);
    }
    for (std::size_t i = 0; i < ops.size() && i < rows; ++i) {
      profile.push_back({{"name", ops[i].name}, {"calls", ops[i].calls}, {"self_ms", ops[i].self_ms}});
    }
  }

  // Greedy generation, cached, for tgt_len tokens per row (no early stop: random weights).
  double gen_seconds = 0;
  {
    torch::NoGradGuard no_grad;
    model->eval();
    compat::AutocastScope autocast(device, bf16);
    const auto t0 = Clock::now();
    auto enc = model->encode(ids, mask);
    auto state = model->start_decoding(enc, mask);
    auto next = torch::zeros({o.batch}, torch::TensorOptions().dtype(torch::kLong).device(device));
    for (int64_t t = 0; t < o.tgt_len; ++t) next = model->decode_step(next, state).argmax(-1);
    (void)next.sum().item<int64_t>();
    gen_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  const double flops = training_step_flops(o.shape, o.batch, o.src_len, o.tgt_len);
  const double peak = std::max(peak_before, matmul_peak_flops(device_name, bf16, peak_n));
  const double achieved = flops / step;
  if (achieved > peak) {
    spdlog::warn("bench: the step ran above the measured matmul peak (MFU {:.0f}%): the machine was slower while "
                 "the peak was measured; rerun for a trustworthy MFU", 100.0 * achieved / peak);
  }
  return {{"shape", o.shape},
          {"device", device_name},
          {"precision", o.precision},
          {"threads", threads},
          {"kernel_threads", own_kernel_threads()},
          {"batch", o.batch},
          {"src_len", o.src_len},
          {"tgt_len", o.tgt_len},
          {"steps", o.steps},
          {"ms_per_step", step * 1000},
          {"tokens_per_sec", tokens / step},
          {"step_tflops", achieved / 1e12},
          {"peak_tflops", peak / 1e12},
          {"mfu", achieved / peak},
          {"gen_tokens_per_sec", static_cast<double>(o.batch * o.tgt_len) / gen_seconds},
          {"peak_mem_mb", device.is_cuda() ? cuda_memory_stats(device.index()).value_or(CudaMemoryStats{}).peak_allocated_mib
                                          : peak_rss_mb()},
          {"peak_mem_kind", device.is_cuda() ? "cuda allocator peak" : "process RSS peak"},
          {"blas_core", blas_core_name()},
          {"libtorch", torch_version()},
          {"attention", model->attention_path(o.batch, bf16)},
          {"activation_checkpointing", o.activation_checkpointing},
          {"cuda_graphs", o.cuda_graphs},
          {"stacked_projections", o.stacked_projections},
          {"cpu_gemm", projection_products(device, bf16)},
          {"profile", profile},
          {"profile_categories", profile_categories},
          {"profile_by_op", profile_by_op},
          {"profile_table", profile_table},
          {"page_faults_per_step", faults_per_step},
          {"profile_page_faults", profile_faults},
          {"profile_warmup_page_faults", profile_warmup_faults}};
}

}  // namespace qa
