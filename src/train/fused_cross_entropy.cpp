#include "qa/train/fused_cross_entropy.hpp"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "qa/model/softmax_rows.hpp"
#include "qa/model/vector_math.hpp"

namespace qa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

constexpr int kLanes = 16;  // independent partial sums: lets the reduction vectorise

// A row's maximum m and log(sum(exp(x - m))), kept apart as log_softmax keeps them: x - m - log_sum
// loses nothing where m is large and log_sum small, x - (m + log_sum) would round to m's precision.
struct RowStats {  // two floats: a [rows, 2] tensor holds them
  float max, log_sum;
};

static_assert(sizeof(RowStats) == 2 * sizeof(float));

QA_VECTOR_CLONES RowStats row_stats(const float* x, int64_t n) {
  const float m = row_max(x, n);
  // A NaN anywhere in the row makes the sum NaN (the maximum skips it, the sum does not).
  float lane_sum[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float d = x[j + l] - m;
      const float e = vec::exp_clamped(d);
      lane_sum[l] += d < -87.0f ? 0.0f : e;
    }
  }
  float sum = 0.0f;
  for (int l = 0; l < kLanes; ++l) sum += lane_sum[l];
  for (; j < n; ++j) {
    const float d = x[j] - m;
    const float e = vec::exp_clamped(d);
    sum += d < -87.0f ? 0.0f : e;
  }
  return {m, std::log(sum)};
}

// dx = g * exp(x - m - log_sum): the row's softmax, scaled (the label's -g is added by the caller).
QA_VECTOR_CLONES void row_softmax_scaled(const float* x, RowStats r, float g, float* dx, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float d = (x[j] - r.max) - r.log_sum;
    const float e = vec::exp_clamped(d);
    dx[j] = g * (d < -87.0f ? 0.0f : e);
  }
}

// Rows per task: about 32k elements, whatever the vocabulary.
int64_t row_grain(int64_t vocab) { return std::max<int64_t>(1, 32768 / vocab); }

class CrossEntropyFunction : public torch::autograd::Function<CrossEntropyFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits, const torch::Tensor& labels,
                               int64_t ignore_index) {
    const int64_t rows = logits.size(0), vocab = logits.size(1), ld = logits.stride(0);
    const float* x = logits.data_ptr<float>();
    const int64_t* y = labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < rows; ++i) {  // before any work, as LibTorch's nll_loss checks
      TORCH_CHECK(y[i] == ignore_index || (y[i] >= 0 && y[i] < vocab), "cross entropy: label ", y[i],
                  " at row ", i, " is outside the vocabulary [0, ", vocab, ")");
    }
    auto stats = torch::empty({rows, 2}, logits.options());  // RowStats per row
    auto* sp = reinterpret_cast<RowStats*>(stats.data_ptr<float>());
    std::vector<double> row_loss(static_cast<std::size_t>(rows), 0.0);
    at::parallel_for(0, rows, row_grain(vocab), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        if (y[i] == ignore_index) continue;
        const float* row = x + i * ld;
        sp[i] = row_stats(row, vocab);
        row_loss[i] = static_cast<double>(sp[i].log_sum - (row[y[i]] - sp[i].max));
      }
    });
    double total = 0.0;
    for (double l : row_loss) total += l;
    ctx->save_for_backward({logits, labels, stats});
    ctx->saved_data["ignore_index"] = ignore_index;
    return torch::full({}, total, logits.options());
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &logits = saved[0], &labels = saved[1], &stats = saved[2];
    const int64_t ignore_index = ctx->saved_data["ignore_index"].toInt();
    const int64_t rows = logits.size(0), vocab = logits.size(1), ld = logits.stride(0);
    const float g = grads[0].item<float>();
    auto dlogits = torch::empty({rows, vocab}, logits.options());
    const float* x = logits.data_ptr<float>();
    const int64_t* y = labels.data_ptr<int64_t>();
    const auto* sp = reinterpret_cast<const RowStats*>(stats.data_ptr<float>());
    float* dx = dlogits.data_ptr<float>();
    at::parallel_for(0, rows, row_grain(vocab), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float* d = dx + i * vocab;
        if (y[i] == ignore_index) {
          std::fill(d, d + vocab, 0.0f);
          continue;
        }
        row_softmax_scaled(x + i * ld, sp[i], g, d, vocab);
        d[y[i]] -= g;
      }
    });
    return {dlogits, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool fused_cross_entropy_applies(const torch::Tensor& logits, const torch::Tensor& labels) {
  return logits.device().is_cpu() && labels.device().is_cpu() && logits.scalar_type() == torch::kFloat &&
         labels.scalar_type() == torch::kLong && logits.dim() == 2 && labels.dim() == 1 &&
         labels.size(0) == logits.size(0) && logits.size(0) > 0 && logits.size(1) > 0 &&
         (logits.size(1) == 1 || logits.stride(1) == 1) && logits.stride(0) >= logits.size(1);
}

torch::Tensor fused_cross_entropy_sum(const torch::Tensor& logits, const torch::Tensor& labels, int64_t ignore_index) {
  RECORD_FUNCTION("qa::fused_cross_entropy", std::vector<c10::IValue>());  // named in profiles
  TORCH_CHECK(fused_cross_entropy_applies(logits, labels), "fused_cross_entropy_sum: operands it does not handle");
  return CrossEntropyFunction::apply(logits, labels.contiguous(), ignore_index);
}

}  // namespace qa
