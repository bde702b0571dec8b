#include "qa/model/onednn_linear.hpp"

#include <ATen/record_function.h>

#include <atomic>

#include "qa/model/matrix_rows.hpp"
#include "qa/runtime/blas.hpp"
#include "qa/runtime/runtime.hpp"
#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

std::atomic<bool> enabled{true};

class OnednnLinearFunction : public torch::autograd::Function<OnednnLinearFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w) {
    ctx->save_for_backward({x, w});
    const int64_t in = w.size(1), out = w.size(0);
    const int64_t rows = x.numel() / in;
    if (!onednn_forward_for_rows(rows)) return torch::linear(x, w);
    const auto xm = matrix_rows(x, in);
    auto y = torch::empty({rows, out}, xm.options());
    if (rows >= kOnednnTransposedForwardMinRows) {
      // x (W^T): oneDNN reads both operands untransposed, 212-232 GFLOP/s at the projections' shapes
      // here against 157-221 for x W^T (bench/RESULTS.md). The copy of W^T costs what ~400 rows gain.
      const auto wt = w.t().contiguous();
      onednn_sgemm_row_major(false, false, rows, out, in, 1.0f, xm.data_ptr<float>(), xm.stride(0),
                             wt.data_ptr<float>(), out, 0.0f, y.data_ptr<float>(), out);
    } else {
      onednn_sgemm_row_major(false, true, rows, out, in, 1.0f, xm.data_ptr<float>(), xm.stride(0),
                             w.data_ptr<float>(), in, 0.0f, y.data_ptr<float>(), out);
    }
    return with_leading_dims_of(y, x);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];
    const int64_t in = w.size(1), out = w.size(0);
    const auto dy = matrix_rows(grads[0], out);
    const int64_t rows = dy.size(0);
    torch::Tensor dx, dw;
    if (ctx->needs_input_grad(0)) {
      // dx = dy W: [rows, out] x [out, in].
      dx = torch::empty({rows, in}, dy.options());
      onednn_sgemm_row_major(false, false, rows, in, out, 1.0f, dy.data_ptr<float>(), dy.stride(0),
                             w.data_ptr<float>(), in, 0.0f, dx.data_ptr<float>(), in);
      dx = dx.view(x.sizes());
    }
    if (ctx->needs_input_grad(1)) {
      // dW = dy^T x: [out, rows] x [rows, in].
      const auto xm = matrix_rows(x, in);
      dw = torch::empty({out, in}, dy.options());
      onednn_sgemm_row_major(true, false, out, in, rows, 1.0f, dy.data_ptr<float>(), dy.stride(0),
                             xm.data_ptr<float>(), xm.stride(0), 0.0f, dw.data_ptr<float>(), in);
    }
    return {dx, dw};
  }
};

}  // namespace

bool onednn_linear_applies(const torch::Tensor& x, const torch::Tensor& w) {
  if (!onednn_linear_usable()) return false;
  if (compat::autocast_state(c10::DeviceType::CPU).enabled) return false;  // autocast decides the dtype
  const bool handled = x.device().is_cpu() && w.device().is_cpu() && x.scalar_type() == torch::kFloat &&
                       w.scalar_type() == torch::kFloat && w.dim() == 2 && w.is_contiguous() && x.dim() >= 1 &&
                       x.size(-1) == w.size(1) && x.numel() > 0 && w.numel() > 0;
  if (!handled) return false;
  // Without a gradient only where the forward product is oneDNN's: activation checkpointing runs a
  // block without grad and recomputes it with grad, and both must compute the same bits.
  const bool grad_wanted = torch::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad());
  return grad_wanted || onednn_forward_for_rows(x.numel() / w.size(1));
}

torch::Tensor onednn_linear(const torch::Tensor& x, const torch::Tensor& w) {
  RECORD_FUNCTION("qa::onednn_linear", std::vector<c10::IValue>());  // named in profiles
  return OnednnLinearFunction::apply(x, w);
}

void set_onednn_linear_enabled(bool on) { enabled.store(on, std::memory_order_relaxed); }
bool onednn_linear_enabled() { return enabled.load(std::memory_order_relaxed); }

bool onednn_linear_usable() { return cpu_has_avx512() && onednn_linear_enabled() && onednn_sgemm_available(); }

bool onednn_linear_forward() {
  static const bool below = blas_kernel_older_than_cpu();  // the BLAS does not change within a process
  return below && onednn_linear_usable();
}

bool onednn_forward_for_rows(int64_t rows) {
  return onednn_linear_forward() || (rows >= kOnednnTransposedForwardMinRows && onednn_linear_usable());
}

bool onednn_linear_in_training(const torch::Device& device, bool bf16) {
  return onednn_linear_usable() && device.is_cpu() && !bf16;
}

}  // namespace qa
