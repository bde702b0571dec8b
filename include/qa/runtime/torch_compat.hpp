// Every difference between the LibTorch versions qa-train builds against (1.13 on Debian 12,
// 2.x in the Debian 13 container and on GPU machines) lives here.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#define QA_TORCH_VERSION_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace qa::compat {

// Autocast settings of one device type (CPU or CUDA), to record and re-enter later.
struct AutocastState {
  bool enabled = false;
  at::ScalarType dtype = at::kBFloat16;
};

inline AutocastState autocast_state(c10::DeviceType device) {
#if QA_TORCH_VERSION_AT_LEAST(2, 4)
  return {at::autocast::is_autocast_enabled(device), at::autocast::get_autocast_dtype(device)};
#else
  if (device == c10::DeviceType::CUDA) return {at::autocast::is_enabled(), at::autocast::get_autocast_gpu_dtype()};
  return {at::autocast::is_cpu_enabled(), at::autocast::get_autocast_cpu_dtype()};
#endif
}

inline void set_autocast_state(c10::DeviceType device, const AutocastState& s) {
#if QA_TORCH_VERSION_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(device, s.enabled);
  at::autocast::set_autocast_dtype(device, s.dtype);
#else
  if (device == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(s.enabled);
    at::autocast::set_autocast_gpu_dtype(s.dtype);
    return;
  }
  at::autocast::set_cpu_enabled(s.enabled);
  at::autocast::set_autocast_cpu_dtype(s.dtype);
#endif
}

// The thread's autocast settings for CPU and CUDA (and its cast cache switch), all at once.
struct AutocastSnapshot {
  AutocastState cpu, cuda;
  bool cache_enabled = true;
  static AutocastSnapshot capture() {
    return {autocast_state(c10::DeviceType::CPU), autocast_state(c10::DeviceType::CUDA),
            at::autocast::is_autocast_cache_enabled()};
  }
  void apply() const {
    set_autocast_state(c10::DeviceType::CPU, cpu);
    set_autocast_state(c10::DeviceType::CUDA, cuda);
    at::autocast::set_autocast_cache_enabled(cache_enabled);
  }
};

// Re-enters a recorded autocast snapshot for the scope (on or off, whatever is current), then puts
// the previous settings back; autocast state is thread-local, and a backward pass may run on
// another thread or outside the forward's autocast scope.
class AutocastSnapshotScope {
 public:
  explicit AutocastSnapshotScope(const AutocastSnapshot& s) : previous_(AutocastSnapshot::capture()) {
    at::autocast::increment_nesting();
    s.apply();
  }
  ~AutocastSnapshotScope() {
    previous_.apply();
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  }
  AutocastSnapshotScope(const AutocastSnapshotScope&) = delete;
  AutocastSnapshotScope& operator=(const AutocastSnapshotScope&) = delete;

 private:
  AutocastSnapshot previous_;
};

// RAII scope for autocast, as Python's `with torch.autocast(...)`.
class AutocastScope {
 public:
  AutocastScope(c10::Device device, bool enabled, at::ScalarType dtype = at::kBFloat16)
      : device_(device.type()), active_(enabled) {
    if (active_) {
      at::autocast::increment_nesting();
      previous_ = autocast_state(device_);
      set_autocast_state(device_, {true, dtype});
    }
  }
  ~AutocastScope() {
    if (!active_) return;
    set_autocast_state(device_, previous_);  // on or off, and the dtype, as before the scope
    // Leaving the outermost scope frees the cached bf16 copies of the weights.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType device_;
  bool active_;
  AutocastState previous_;
};

// at::scaled_dot_product_attention with an explicit `scale` (T5 uses 1: no 1/sqrt(d)) exists from
// LibTorch 2.1. Returns an undefined tensor where it does not; callers then compute attention
// themselves. attn_mask is additive, in the dtype of q (or broadcastable to [B, H, Q, K]).
constexpr bool kHasSdpa = QA_TORCH_VERSION_AT_LEAST(2, 1);
inline at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                               const at::Tensor& attn_mask, double dropout_p, double scale) {
#if QA_TORCH_VERSION_AT_LEAST(2, 1)
  return at::scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, /*is_causal=*/false, scale);
#else
  (void)q, (void)k, (void)v, (void)attn_mask, (void)dropout_p, (void)scale;
  return {};
#endif
}

// The memory-efficient attention kernel called directly (LibTorch >= 2.1, CUDA only): its backward
// also returns the gradient of the additive bias. at::scaled_dot_product_attention does not choose it
// (nor cuDNN) when the mask requires grad, as T5's learned position bias does in training: LibTorch
// 2.11 on an H200 fell back to its math backend, which computes bf16 attention in fp32 without tensor
// cores. Where the mask needs no gradient it chose cuDNN, which builds a plan for every new shape
// (every generated token's key length, every padded batch length).
constexpr bool kHasEfficientAttention = QA_TORCH_VERSION_AT_LEAST(2, 1);

// The additive bias as that kernel takes it: [B, H, Q, K] materialised with contiguous rows aligned
// to 16 elements (padded as the dispatcher would, then sliced back, so the padding's gradient is
// never read). Contiguous first: a bias permuted from [Q, K, H] looks channels-last, padding keeps
// that layout, and the kernel refused it on the GPU machine ("last dimension must be contiguous").
// Returns `bias` itself when it is laid out so already: a stack prepares its bias once for all layers.
inline at::Tensor efficient_attention_bias(const at::Tensor& bias, int64_t batch, int64_t heads, int64_t queries,
                                           int64_t keys) {
  const int64_t aligned = (keys + 15) / 16 * 16;
  if (bias.dim() == 4 && bias.sizes() == at::IntArrayRef{batch, heads, queries, keys} && bias.stride(3) == 1 &&
      bias.stride(2) == aligned && bias.stride(1) == queries * aligned && bias.stride(0) == heads * queries * aligned) {
    return bias;
  }
  at::Tensor b = bias.expand({batch, heads, queries, keys}).contiguous();
  return aligned == keys ? b : at::constant_pad_nd(b, {0, aligned - keys}).slice(-1, 0, keys);
}

// q, k, v [B, H, L, d]; bias broadcastable to [B, H, Q, K] or undefined.
inline at::Tensor efficient_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& bias, double dropout_p, double scale) {
#if QA_TORCH_VERSION_AT_LEAST(2, 1)
  const at::Tensor b = bias.defined() ? efficient_attention_bias(bias, q.size(0), q.size(1), q.size(2), k.size(2)) : bias;
  const bool grad = at::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad() ||
                                                   (bias.defined() && bias.requires_grad()));
  return std::get<0>(at::_scaled_dot_product_efficient_attention(q, k, v, b, /*compute_log_sumexp=*/grad, dropout_p,
                                                                  /*is_causal=*/false, scale));
#else
  (void)q, (void)k, (void)v, (void)bias, (void)dropout_p, (void)scale;
  return {};
#endif
}

// RMSNorm as one LibTorch operator, y = w * x * rsqrt(mean(x^2) + eps) with fp32 statistics:
// at::rms_norm exists from 2.4 and runs one fused CUDA kernel from 2.8 (the composite expression
// is five element-wise kernels and a reduction each way). Undefined where it does not exist.
constexpr bool kHasRmsNorm = QA_TORCH_VERSION_AT_LEAST(2, 4);
inline at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
#if QA_TORCH_VERSION_AT_LEAST(2, 4)
  return at::rms_norm(x, {x.size(-1)}, weight, eps);
#else
  (void)x, (void)weight, (void)eps;
  return {};
#endif
}

// at::_fused_adamw_ (AdamW over a list of tensors in one multi-tensor kernel, skipping the update
// where found_inf is 1 and dividing gradients by grad_scale): CUDA from LibTorch 2.0, CPU from 2.4.
inline bool has_fused_adamw(c10::DeviceType device) {
#if QA_TORCH_VERSION_AT_LEAST(2, 4)
  return device == c10::DeviceType::CUDA || device == c10::DeviceType::CPU;
#elif QA_TORCH_VERSION_AT_LEAST(2, 0)
  return device == c10::DeviceType::CUDA;
#else
  (void)device;
  return false;
#endif
}
// `step`: the float32 step count (after this step's increment), shared by all the tensors.
inline void fused_adamw_(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs, at::TensorList exp_avg_sqs,
                         const at::Tensor& step, double lr, double beta1, double beta2, double weight_decay, double eps,
                         const at::Tensor& grad_scale, const at::Tensor& found_inf) {
#if QA_TORCH_VERSION_AT_LEAST(2, 0)
  std::vector<at::Tensor> steps(params.size(), step);
  at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, lr, beta1, beta2, weight_decay,
                    eps, /*amsgrad=*/false, /*maximize=*/false, grad_scale, found_inf);
#else
  (void)params, (void)grads, (void)exp_avgs, (void)exp_avg_sqs, (void)step, (void)lr, (void)beta1, (void)beta2,
      (void)weight_decay, (void)eps, (void)grad_scale, (void)found_inf;
  TORCH_CHECK(false, "at::_fused_adamw_ needs LibTorch 2.0 or later");
#endif
}

}  // namespace qa::compat

// c10d (only where data_parallel.cpp includes its headers first): LibTorch 2.x splits the process
// group into a front end and per-backend `Backend` objects; Gloo and NCCL groups are Backends there,
// ProcessGroups in 1.13. Both have the collectives qa-train calls.
#ifdef QA_COMPAT_C10D
namespace qa::compat {
#if QA_TORCH_VERSION_AT_LEAST(2, 0)
using CollectiveGroup = c10d::Backend;
#else
using CollectiveGroup = c10d::ProcessGroup;
#endif
// LibTorch >= 2.4 defaults the TCPStore to libuv, which Debian's LibTorch 2.6 is built without.
inline void disable_libuv(c10d::TCPStoreOptions& opts) {
#if QA_TORCH_VERSION_AT_LEAST(2, 4)
  opts.useLibUV = false;
#else
  (void)opts;
#endif
}
}  // namespace qa::compat
#endif
