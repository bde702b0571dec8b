#include "qa/model/fused_rms_norm.hpp"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cmath>

namespace qa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// sum over j < d of term(j), in kLanes independent partial sums so that the compiler vectorises it.
constexpr int kLanes = 16;
template <class Term>
float lane_sum(int64_t d, Term term) {
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= d; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += term(j + l);
  float s = 0;
  for (; j < d; ++j) s += term(j);
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// Rows per task: enough work per task to amortise the thread hand-off.
int64_t grain(int64_t d) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(d, 1)); }

class RMSNormFunction : public torch::autograd::Function<RMSNormFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in, const torch::Tensor& w_in, double eps) {
    const auto x = x_in.contiguous();
    const auto w = w_in.contiguous();
    const int64_t d = x.size(-1), rows = x.numel() / std::max<int64_t>(d, 1);
    auto y = torch::empty_like(x);
    auto rstd = torch::empty({rows}, x.options());
    const float* xp = x.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    float* rp = rstd.data_ptr<float>();
    at::parallel_for(0, rows, grain(d), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* xr = xp + r * d;
        float* yr = yp + r * d;
        const float sum_sq = lane_sum(d, [xr](int64_t j) { return xr[j] * xr[j]; });
        const float inv = 1.0f / std::sqrt(sum_sq / static_cast<float>(d) + static_cast<float>(eps));
        rp[r] = inv;
        for (int64_t j = 0; j < d; ++j) yr[j] = wp[j] * (xr[j] * inv);
      }
    });
    ctx->save_for_backward({x, w, rstd});
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];
    const auto& rstd = saved[2];
    const auto dy = grads[0].contiguous();
    const int64_t d = x.size(-1), rows = x.numel() / std::max<int64_t>(d, 1);
    auto dx = torch::empty_like(x);
    // dw is a sum over rows: each block of rows writes its own partial row, summed at the end
    // (fixed blocks, so the result does not depend on the number of threads).
    const int64_t block = grain(d);
    const int64_t blocks = (rows + block - 1) / block;
    auto dw_partial = torch::zeros({std::max<int64_t>(blocks, 1), d}, x.options());
    const float* xp = x.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    const float* rp = rstd.data_ptr<float>();
    const float* gp = dy.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    float* dwp = dw_partial.data_ptr<float>();
    at::parallel_for(0, blocks, 1, [&](int64_t b_begin, int64_t b_end) {
      for (int64_t b = b_begin; b < b_end; ++b) {
        float* dwr = dwp + b * d;
        for (int64_t r = b * block; r < std::min(rows, (b + 1) * block); ++r) {
          const float* xr = xp + r * d;
          const float* gr = gp + r * d;
          float* dxr = dxp + r * d;
          const float inv = rp[r];
          // y = w * xhat, xhat = x * inv: dx = inv * (g*w - xhat * mean(g*w*xhat)), dw += g * xhat
          const float m = lane_sum(d, [gr, wp, xr](int64_t j) { return gr[j] * wp[j] * xr[j]; }) * inv / static_cast<float>(d);
          for (int64_t j = 0; j < d; ++j) {
            const float xhat = xr[j] * inv;
            dxr[j] = inv * (gr[j] * wp[j] - xhat * m);
            dwr[j] += gr[j] * xhat;
          }
        }
      }
    });
    return {dx, dw_partial.sum(0), torch::Tensor()};
  }
};

}  // namespace

bool fused_rms_norm_applies(const torch::Tensor& x, const torch::Tensor& weight) {
  return x.device().is_cpu() && weight.device().is_cpu() && x.scalar_type() == torch::kFloat &&
         weight.scalar_type() == torch::kFloat && weight.dim() == 1 && x.dim() >= 1 && x.size(-1) == weight.size(0);
}

torch::Tensor fused_rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  RECORD_FUNCTION("qa::fused_rms_norm", std::vector<c10::IValue>());  // named in profiles
  return RMSNormFunction::apply(x, weight, eps);
}

}  // namespace qa
