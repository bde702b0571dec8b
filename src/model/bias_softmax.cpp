#include "qa/model/bias_softmax.hpp"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <vector>

#include "qa/model/bf16_rows.hpp"
#include "qa/model/bias_rows.hpp"
#include "qa/model/softmax_rows.hpp"
#include "qa/model/vector_math.hpp"

namespace qa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

QA_VECTOR_CLONES void widen_add_row(const c10::BFloat16* in, const float* bias, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = vec::bits_to_float(static_cast<uint32_t>(in[i].x) << 16) + bias[i];
}

// Rows per task: enough elements to amortise the hand-off.
int64_t row_grain(int64_t k) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(k, 1)); }

class BiasSoftmaxFunction : public torch::autograd::Function<BiasSoftmaxFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& scores_in, const torch::Tensor& bias_in,
                               bool has_bias) {
    const auto scores = scores_in.contiguous();
    const torch::Tensor bias = has_bias ? with_contiguous_keys(bias_in) : bias_in;
    const int64_t heads = scores.size(1), q_len = scores.size(2), k_len = scores.size(3);
    auto probs = torch::empty(scores.sizes(), scores.options().dtype(torch::kFloat));
    auto out = torch::empty(scores.sizes(), scores.options());
    const auto* s = scores.data_ptr<c10::BFloat16>();
    float* p = probs.data_ptr<float>();
    auto* o = out.data_ptr<c10::BFloat16>();
    const BiasRows rows = has_bias ? BiasRows(bias) : BiasRows();
    at::parallel_for(0, scores.numel() / std::max<int64_t>(k_len, 1), row_grain(k_len), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t i = r % q_len, h = (r / q_len) % heads, b = r / (q_len * heads);
        float* x = p + r * k_len;
        if (rows.data) {
          widen_add_row(s + r * k_len, rows.row(b, h, i), x, k_len);
        } else {
          widen_bf16(s + r * k_len, x, k_len);
        }
        softmax_row(x, k_len);
        narrow_bf16(x, o + r * k_len, k_len);
      }
    });
    ctx->save_for_backward({probs});
    ctx->saved_data["bias_sizes"] = has_bias ? bias_in.sizes().vec() : std::vector<int64_t>{};
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto probs = ctx->get_saved_variables()[0];
    const auto g = grads[0].to(torch::kBFloat16).contiguous();
    const int64_t k_len = probs.size(3);
    const auto bias_sizes = ctx->saved_data["bias_sizes"].toIntVector();
    const bool bias_grad = !bias_sizes.empty() && ctx->needs_input_grad(1);
    auto dscores = torch::empty(probs.sizes(), g.options());
    // The bias's gradient is the scores' gradient in fp32, summed over what the bias broadcasts over.
    torch::Tensor dfull = bias_grad ? torch::empty(probs.sizes(), probs.options()) : torch::Tensor();
    const float* p = probs.data_ptr<float>();
    const auto* gp = g.data_ptr<c10::BFloat16>();
    auto* ds = dscores.data_ptr<c10::BFloat16>();
    float* df = bias_grad ? dfull.data_ptr<float>() : nullptr;
    at::parallel_for(0, probs.numel() / std::max<int64_t>(k_len, 1), row_grain(k_len), [&](int64_t begin, int64_t end) {
      std::vector<float> scratch(df ? 0 : k_len);
      for (int64_t r = begin; r < end; ++r) {
        float* d = df ? df + r * k_len : scratch.data();
        widen_bf16(gp + r * k_len, d, k_len);
        softmax_backward_row(p + r * k_len, d, k_len);
        narrow_bf16(d, ds + r * k_len, k_len);
      }
    });
    torch::Tensor dbias;
    if (bias_grad) dbias = dfull.sum_to_size(bias_sizes);
    return {dscores, dbias, torch::Tensor()};
  }
};

}  // namespace

bool bias_softmax_applies(const torch::Tensor& scores, const torch::Tensor& bias) {
  if (!scores.defined() || !scores.device().is_cpu() || scores.scalar_type() != torch::kBFloat16 || scores.dim() != 4) {
    return false;
  }
  if (scores.numel() == 0) return false;
  if (!bias.defined()) return true;
  if (!bias.device().is_cpu() || bias.scalar_type() != torch::kFloat || bias.dim() != 4 || bias.size(3) != scores.size(3)) {
    return false;
  }
  for (int64_t d = 0; d < 3; ++d) {
    if (bias.size(d) != 1 && bias.size(d) != scores.size(d)) return false;
  }
  return true;
}

torch::Tensor bias_softmax(const torch::Tensor& scores, const torch::Tensor& bias) {
  RECORD_FUNCTION("qa::bias_softmax", std::vector<c10::IValue>());  // named in profiles
  TORCH_CHECK(bias_softmax_applies(scores, bias), "bias_softmax: operands it does not handle (see bias_softmax_applies)");
  const bool has_bias = bias.defined();
  return BiasSoftmaxFunction::apply(scores, has_bias ? bias : torch::empty({0}), has_bias);
}

}  // namespace qa
