#include "qa/model/fused_gated_gelu.hpp"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cstdint>

#include "qa/model/bf16_rows.hpp"
#include "qa/model/vector_math.hpp"

namespace qa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

using vec::bits_to_float;
using vec::exp_clamped;
using vec::float_to_bits;

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

// gelu_tanh(x) = 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): the sigmoid
// form does not cancel where tanh(u) nears -1 (x below about -3). Returns sigmoid(2u) and du/dx.
QA_INLINE void gelu_parts(float x, float& s, float& du) {
  const float x2 = x * x;
  const float u = kSqrt2OverPi * x * (1.0f + kCubic * x2);
  s = 1.0f / (1.0f + exp_clamped(-2.0f * u));
  du = kSqrt2OverPi * (1.0f + 3.0f * kCubic * x2);
}

QA_VECTOR_CLONES void forward_f32(const float* a, const float* b, float* h, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float s, du;
    gelu_parts(a[i], s, du);
    h[i] = a[i] * s * b[i];
  }
}

// d gelu/dx = s + x * s (1 - s) * 2 du/dx
QA_VECTOR_CLONES void backward_f32(const float* a, const float* b, const float* g, float* da, float* db, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float s, du;
    gelu_parts(a[i], s, du);
    const float x = a[i];
    db[i] = g[i] * x * s;
    da[i] = g[i] * b[i] * (s + x * s * (1.0f - s) * 2.0f * du);
  }
}

constexpr int64_t kGrain = 16384;  // elements per task: enough to amortise the hand-off
constexpr int64_t kBlock = 512;    // bf16: elements widened into fp32 scratch at a time

torch::Tensor gated_gelu_forward(const torch::Tensor& a, const torch::Tensor& b) {
  auto h = torch::empty_like(a, torch::MemoryFormat::Contiguous);
  const int64_t n = a.numel();
  if (a.scalar_type() == torch::kFloat) {
    const float* ap = a.data_ptr<float>();
    const float* bp = b.data_ptr<float>();
    float* hp = h.data_ptr<float>();
    at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) { forward_f32(ap + begin, bp + begin, hp + begin, end - begin); });
    return h;
  }
  const auto* ap = a.data_ptr<c10::BFloat16>();
  const auto* bp = b.data_ptr<c10::BFloat16>();
  auto* hp = h.data_ptr<c10::BFloat16>();
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    float fa[kBlock], fb[kBlock], fh[kBlock];
    for (int64_t i = begin; i < end; i += kBlock) {
      const int64_t m = std::min(kBlock, end - i);
      widen_bf16(ap + i, fa, m);
      widen_bf16(bp + i, fb, m);
      forward_f32(fa, fb, fh, m);
      narrow_bf16(fh, hp + i, m);
    }
  });
  return h;
}

std::pair<torch::Tensor, torch::Tensor> gated_gelu_backward(const torch::Tensor& a, const torch::Tensor& b,
                                                           const torch::Tensor& g) {
  auto da = torch::empty_like(a, torch::MemoryFormat::Contiguous);
  auto db = torch::empty_like(b, torch::MemoryFormat::Contiguous);
  const int64_t n = a.numel();
  if (a.scalar_type() == torch::kFloat) {
    const float* ap = a.data_ptr<float>();
    const float* bp = b.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* dap = da.data_ptr<float>();
    float* dbp = db.data_ptr<float>();
    at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
      backward_f32(ap + begin, bp + begin, gp + begin, dap + begin, dbp + begin, end - begin);
    });
    return {da, db};
  }
  const auto* ap = a.data_ptr<c10::BFloat16>();
  const auto* bp = b.data_ptr<c10::BFloat16>();
  const auto* gp = g.data_ptr<c10::BFloat16>();
  auto* dap = da.data_ptr<c10::BFloat16>();
  auto* dbp = db.data_ptr<c10::BFloat16>();
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    float fa[kBlock], fb[kBlock], fg[kBlock], fda[kBlock], fdb[kBlock];
    for (int64_t i = begin; i < end; i += kBlock) {
      const int64_t m = std::min(kBlock, end - i);
      widen_bf16(ap + i, fa, m);
      widen_bf16(bp + i, fb, m);
      widen_bf16(gp + i, fg, m);
      backward_f32(fa, fb, fg, fda, fdb, m);
      narrow_bf16(fda, dap + i, m);
      narrow_bf16(fdb, dbp + i, m);
    }
  });
  return {da, db};
}

class GatedGeluFunction : public torch::autograd::Function<GatedGeluFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& a_in, const torch::Tensor& b_in) {
    const auto a = a_in.contiguous(), b = b_in.contiguous();
    ctx->save_for_backward({a, b});
    return gated_gelu_forward(a, b);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& a = saved[0];
    const auto g = grads[0].to(a.scalar_type()).contiguous();
    auto [da, db] = gated_gelu_backward(a, saved[1], g);
    return {da, db};
  }
};

}  // namespace

bool fused_gated_gelu_applies(const torch::Tensor& a, const torch::Tensor& b) {
  const auto t = a.scalar_type();
  return a.device().is_cpu() && b.device().is_cpu() && t == b.scalar_type() && (t == torch::kFloat || t == torch::kBFloat16) &&
         a.sizes() == b.sizes();
}

torch::Tensor fused_gated_gelu(const torch::Tensor& a, const torch::Tensor& b) {
  RECORD_FUNCTION("qa::fused_gated_gelu", std::vector<c10::IValue>());  // named in profiles
  return GatedGeluFunction::apply(a, b);
}

}  // namespace qa
