#include "qa/model/fused_attention.hpp"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "qa/model/vector_math.hpp"
#include "qa/runtime/blas.hpp"
#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

constexpr int kLanes = 16;  // independent partial maxima and sums: lets the reductions vectorise

// Softmax of one row in place. e^x below e^-87 is taken as 0, so masked keys get exactly 0, as in
// softmax.
QA_VECTOR_CLONES void softmax_row(float* x, int64_t n) {
  float lane_max[kLanes];
  for (int l = 0; l < kLanes; ++l) lane_max[l] = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane_max[l] = x[j + l] > lane_max[l] ? x[j + l] : lane_max[l];
  }
  float m = -std::numeric_limits<float>::infinity();
  for (int l = 0; l < kLanes; ++l) m = lane_max[l] > m ? lane_max[l] : m;
  for (; j < n; ++j) m = x[j] > m ? x[j] : m;
  float lane_sum[kLanes] = {};
  j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float d = x[j + l] - m;
      const float e = vec::exp_clamped(d);
      x[j + l] = d < -87.0f ? 0.0f : e;
      lane_sum[l] += x[j + l];
    }
  }
  float sum = 0.0f;
  for (int l = 0; l < kLanes; ++l) sum += lane_sum[l];
  for (; j < n; ++j) {
    const float d = x[j] - m;
    const float e = vec::exp_clamped(d);
    x[j] = d < -87.0f ? 0.0f : e;
    sum += x[j];
  }
  const float scale = 1.0f / sum;
  for (j = 0; j < n; ++j) x[j] *= scale;
}

// The softmax's backward for one row, in place: dp becomes p * (dp - sum_j p_j dp_j).
QA_VECTOR_CLONES void softmax_backward_row(const float* p, float* dp, int64_t n) {
  float lane_dot[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane_dot[l] += p[j + l] * dp[j + l];
  }
  float dot = 0.0f;
  for (int l = 0; l < kLanes; ++l) dot += lane_dot[l];
  for (; j < n; ++j) dot += p[j] * dp[j];
  for (j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - dot);
}

// Dropout of attention weights: out = x * keep * scale, keep 0 or 1 (out may be x).
QA_VECTOR_CLONES void apply_keep(const float* x, const float* keep, float scale, float* out, int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j] = x[j] * keep[j] * scale;
}

// bf16 storage for the products under autocast (computed in fp32 all the same).
QA_VECTOR_CLONES void narrow_row(const float* in, c10::BFloat16* out, int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j].x = vec::float_to_bf16_bits(in[j]);
}

// The products, in fp32 through the BLAS's sgemm or, for bf16 operands, through oneDNN's bf16 x bf16 ->
// fp32 product (what LibTorch's own bf16 products run on); either way the result is fp32.
void product(bool ta, bool tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  sgemm_row_major(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
void product(bool ta, bool tb, int m, int n, int k, const c10::BFloat16* a, int lda, const c10::BFloat16* b, int ldb, float beta,
             float* c, int ldc) {
  gemm_bf16_row_major(ta, tb, m, n, k, 1.0f, reinterpret_cast<const uint16_t*>(a), lda, reinterpret_cast<const uint16_t*>(b), ldb,
                      beta, c, ldc);
}

// A product's fp32 result stored as T: fp32 results go straight to their destination, bf16 ones
// through an fp32 scratch matrix and a rounding pass.
template <typename T>
struct Destination;
template <>
struct Destination<float> {
  static float* target(float* dst, int /*ld*/, float* /*scratch*/) { return dst; }
  static int target_ld(int ld, int /*cols*/) { return ld; }
  static void finish(const float*, float*, int, int64_t, int64_t) {}
};
template <>
struct Destination<c10::BFloat16> {
  static float* target(c10::BFloat16* /*dst*/, int /*ld*/, float* scratch) { return scratch; }
  static int target_ld(int /*ld*/, int cols) { return cols; }
  static void finish(const float* scratch, c10::BFloat16* dst, int ld, int64_t rows, int64_t cols) {
    for (int64_t i = 0; i < rows; ++i) narrow_row(scratch + i * cols, dst + i * ld, cols);
  }
};

// An fp32 matrix (weights, scores' gradient) as an operand of the next product: as it is in fp32,
// rounded to bf16 into scratch for bf16 products (as autocast rounds them in the separate operators).
const float* operand(const float* x, int64_t, float*) { return x; }
const c10::BFloat16* operand(const float* x, int64_t n, c10::BFloat16* scratch) {
  narrow_row(x, scratch, n);
  return scratch;
}

// Where the (b, h) matrix of a [B, H, rows, cols] operand starts, and its row stride, for the BLAS:
// innermost stride 1 (callers make it so), rows at least cols apart (a single row may have any stride).
template <typename T>
struct Matrices {
  T* data;
  int64_t batch_stride, head_stride;
  int ld;

  explicit Matrices(const torch::Tensor& t)
      : data(t.data_ptr<T>()),
        batch_stride(t.stride(0)),
        head_stride(t.stride(1)),
        ld(static_cast<int>(t.size(2) == 1 ? std::max<int64_t>(t.size(3), 1) : t.stride(2))) {}
  T* at(int64_t b, int64_t h) const { return data + b * batch_stride + h * head_stride; }
};

// A BLAS-readable layout: innermost stride 1, and rows that do not overlap.
bool blas_layout(const torch::Tensor& t) {
  if (t.size(3) > 1 && t.stride(3) != 1) return false;
  return t.size(2) == 1 || t.stride(2) >= std::max<int64_t>(t.size(3), 1);
}
torch::Tensor as_blas_layout(const torch::Tensor& t) { return blas_layout(t) ? t : t.contiguous(); }

// The bias's row for query i of matrix (b, h), through its strides, 0 where it broadcasts.
struct BiasRows {
  const float* data = nullptr;
  int64_t sb = 0, sh = 0, sq = 0;

  BiasRows() = default;
  explicit BiasRows(const torch::Tensor& t) : data(t.data_ptr<float>()) {
    sb = t.size(0) == 1 ? 0 : t.stride(0);
    sh = t.size(1) == 1 ? 0 : t.stride(1);
    sq = t.size(2) == 1 ? 0 : t.stride(2);
  }
  const float* row(int64_t b, int64_t h, int64_t i) const { return data ? data + b * sb + h * sh + i * sq : nullptr; }
};

// [B, H, Q, D] with the strides of [B, Q, H, D]: heads merge back into [B, Q, H * D] as a view.
torch::Tensor empty_heads_last(int64_t b, int64_t h, int64_t q, int64_t d, const torch::TensorOptions& options) {
  return torch::empty_strided({b, h, q, d}, {q * h * d, d, h * d, 1}, options);
}

// Per-thread scratch: fp32 results on their way to bf16 (rows x cols each), bf16 copies of fp32 operands.
template <typename T>
struct Scratch {
  std::vector<float> dropped, scores, result;
  std::vector<T> operand;
  Scratch(bool dropout, bool scores_needed, int64_t qk, int64_t result_size)
      : dropped(dropout ? qk : 0),
        scores(scores_needed ? qk : 0),
        result(std::is_same_v<T, float> ? 0 : result_size),
        operand(std::is_same_v<T, float> ? 0 : qk) {}
};

// softmax(q k^T + bias) v for every (b, h) matrix; probs receives the undropped weights (fp32).
template <typename T>
void attention_forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const BiasRows& rows,
                       const float* keep_all, float scale, const torch::Tensor& probs, const torch::Tensor& out) {
  const int64_t heads = q.size(1), q_len = q.size(2), d = q.size(3), k_len = k.size(2);
  const Matrices<T> mq(q), mk(k), mv(v), mo(out);
  float* p_all = probs.data_ptr<float>();
  const int iq = static_cast<int>(q_len), ik = static_cast<int>(k_len), id = static_cast<int>(d);
  at::parallel_for(0, q.size(0) * heads, 1, [&](int64_t begin, int64_t end) {
    Scratch<T> s(keep_all != nullptr, false, q_len * k_len, q_len * d);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / heads, h = t % heads;
      float* p = p_all + t * q_len * k_len;
      // The bias is copied in first and the product added to it (beta = 1): the BLAS would otherwise
      // zero the matrix for beta = 0 (a pass of its own), and the bias would take another.
      if (rows.data) {
        for (int64_t i = 0; i < q_len; ++i) std::memcpy(p + i * k_len, rows.row(b, h, i), k_len * sizeof(float));
      }
      product(false, true, iq, ik, id, mq.at(b, h), mq.ld, mk.at(b, h), mk.ld, rows.data ? 1.0f : 0.0f, p, ik);
      for (int64_t i = 0; i < q_len; ++i) softmax_row(p + i * k_len, k_len);
      // The weights are kept undropped: the softmax's backward needs them.
      const float* w = p;
      if (keep_all) {
        apply_keep(p, keep_all + t * q_len * k_len, scale, s.dropped.data(), q_len * k_len);
        w = s.dropped.data();
      }
      T* o = mo.at(b, h);
      float* r = Destination<T>::target(o, mo.ld, s.result.data());
      const int ldr = Destination<T>::target_ld(mo.ld, id);
      product(false, false, iq, id, ik, operand(w, q_len * k_len, s.operand.data()), ik, mv.at(b, h), mv.ld, 0.0f, r, ldr);
      Destination<T>::finish(r, o, mo.ld, q_len, d);
    }
  });
}

// The gradients of q, k, v (into dq, dk, dv) and, where dscores is defined, of the scores.
template <typename T>
void attention_backward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g,
                        const torch::Tensor& probs, const float* keep_all, float scale, const torch::Tensor& dscores,
                        const torch::Tensor& dq, const torch::Tensor& dk, const torch::Tensor& dv) {
  const int64_t heads = q.size(1), q_len = q.size(2), d = q.size(3), k_len = k.size(2);
  const Matrices<T> mq(q), mk(k), mv(v), mg(g), mdq(dq), mdk(dk), mdv(dv);
  const float* p_all = probs.data_ptr<float>();
  float* ds_all = dscores.defined() ? dscores.data_ptr<float>() : nullptr;
  const int iq = static_cast<int>(q_len), ik = static_cast<int>(k_len), id = static_cast<int>(d);
  // dst = op(a) op(b), stored as T
  const auto product_to = [&](Scratch<T>& s, bool ta, bool tb, int m, int n, int kk, const T* a, int lda, const T* b, int ldb,
                              T* dst, int ld) {
    float* r = Destination<T>::target(dst, ld, s.result.data());
    product(ta, tb, m, n, kk, a, lda, b, ldb, 0.0f, r, Destination<T>::target_ld(ld, n));
    Destination<T>::finish(r, dst, ld, m, n);
  };
  at::parallel_for(0, q.size(0) * heads, 1, [&](int64_t begin, int64_t end) {
    Scratch<T> s(keep_all != nullptr, ds_all == nullptr, q_len * k_len, std::max(q_len, k_len) * d);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / heads, h = t % heads;
      const float* p = p_all + t * q_len * k_len;
      float* ds = ds_all ? ds_all + t * q_len * k_len : s.scores.data();
      const float* kp = keep_all ? keep_all + t * q_len * k_len : nullptr;
      const float* w = p;  // the weights the forward pass multiplied the values with
      if (kp) {
        apply_keep(p, kp, scale, s.dropped.data(), q_len * k_len);
        w = s.dropped.data();
      }
      // dV = W^T dO; dW = dO V^T, through the dropout to dP, then the softmax's backward turns it into dS in place
      product_to(s, true, false, ik, id, iq, operand(w, q_len * k_len, s.operand.data()), ik, mg.at(b, h), mg.ld, mdv.at(b, h), mdv.ld);
      product(false, true, iq, ik, id, mg.at(b, h), mg.ld, mv.at(b, h), mv.ld, 0.0f, ds, ik);
      if (kp) apply_keep(ds, kp, scale, ds, q_len * k_len);
      for (int64_t i = 0; i < q_len; ++i) softmax_backward_row(p + i * k_len, ds + i * k_len, k_len);
      // dQ = dS K; dK = dS^T Q
      const auto* ds_operand = operand(ds, q_len * k_len, s.operand.data());
      product_to(s, false, false, iq, id, ik, ds_operand, ik, mk.at(b, h), mk.ld, mdq.at(b, h), mdq.ld);
      product_to(s, true, false, ik, id, iq, ds_operand, ik, mq.at(b, h), mq.ld, mdk.at(b, h), mdk.ld);
    }
  });
}

class FusedAttentionFunction : public torch::autograd::Function<FusedAttentionFunction> {
 public:
  // has_bias: whether bias is an operand (autograd's apply takes no undefined tensors). keep: dropout's
  // draws for the weights, 1 or 0 each, [B, H, Q, K], or empty without dropout; keep_scale = 1 / (1 - p).
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q_in, const torch::Tensor& k_in,
                               const torch::Tensor& v_in, const torch::Tensor& bias_in, bool has_bias,
                               const torch::Tensor& keep, double keep_scale) {
    const auto q = as_blas_layout(q_in), k = as_blas_layout(k_in), v = as_blas_layout(v_in);
    const torch::Tensor bias = has_bias && bias_in.size(3) > 1 && bias_in.stride(3) != 1 ? bias_in.contiguous() : bias_in;
    const int64_t batch = q.size(0), heads = q.size(1), q_len = q.size(2), d = q.size(3), k_len = k.size(2);
    // The attention weights in fp32, kept for the backward pass as the separate operators keep them.
    auto probs = torch::empty({batch, heads, q_len, k_len}, q.options().dtype(torch::kFloat));
    auto out = empty_heads_last(batch, heads, q_len, d, q.options());
    const BiasRows rows = has_bias ? BiasRows(bias) : BiasRows();
    const float* keep_all = keep.numel() > 0 ? keep.data_ptr<float>() : nullptr;
    const auto scale = static_cast<float>(keep_scale);
    if (q.scalar_type() == torch::kFloat) {
      attention_forward<float>(q, k, v, rows, keep_all, scale, probs, out);
    } else {
      attention_forward<c10::BFloat16>(q, k, v, rows, keep_all, scale, probs, out);
    }
    ctx->save_for_backward({q, k, v, probs, keep});
    ctx->saved_data["keep_scale"] = keep_scale;
    ctx->saved_data["bias_sizes"] = has_bias ? bias_in.sizes().vec() : std::vector<int64_t>{};
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3], &keep = saved[4];
    const auto g = as_blas_layout(grads[0].to(q.scalar_type()));
    const int64_t batch = q.size(0), heads = q.size(1), q_len = q.size(2), k_len = k.size(2);
    // Gradients in their inputs' layouts (empty_like keeps a dense view's strides): the heads'
    // gradients then flow back through split_heads' views without copies.
    auto dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    const auto bias_sizes = ctx->saved_data["bias_sizes"].toIntVector();
    const bool bias_grad = !bias_sizes.empty() && ctx->needs_input_grad(3);
    // The bias's gradient is the scores' gradient (fp32), summed over what the bias broadcasts over;
    // kept whole only when it is needed, otherwise each thread reuses one matrix of scratch.
    torch::Tensor dscores = bias_grad ? torch::empty({batch, heads, q_len, k_len}, probs.options()) : torch::Tensor();
    const float* keep_all = keep.numel() > 0 ? keep.data_ptr<float>() : nullptr;
    const auto scale = static_cast<float>(ctx->saved_data["keep_scale"].toDouble());
    if (q.scalar_type() == torch::kFloat) {
      attention_backward<float>(q, k, v, g, probs, keep_all, scale, dscores, dq, dk, dv);
    } else {
      attention_backward<c10::BFloat16>(q, k, v, g, probs, keep_all, scale, dscores, dq, dk, dv);
    }
    torch::Tensor dbias;
    if (bias_grad) dbias = dscores.sum_to_size(bias_sizes);
    return {dq, dk, dv, dbias, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

bool fits_int(const torch::Tensor& t) {
  for (int64_t i = 0; i < t.dim(); ++i)
    if (t.size(i) > std::numeric_limits<int>::max() || t.stride(i) > std::numeric_limits<int>::max()) return false;
  return true;
}

// The operands the pass can compute: see fused_attention_applies, less the thread count.
bool handles(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& bias) {
  // fp32 through the BLAS, outside autocast; bf16 (autocast's products) through oneDNN
  const auto type = q.scalar_type();
  if (type == torch::kFloat) {
    if (!blas_sgemm_available() || compat::autocast_state(c10::DeviceType::CPU).enabled) return false;
  } else if (type != torch::kBFloat16 || !bf16_gemm_available()) {
    return false;
  }
  for (const auto* t : {&q, &k, &v}) {
    if (!t->device().is_cpu() || t->scalar_type() != type || t->dim() != 4 || !fits_int(*t)) return false;
  }
  const int64_t batch = q.size(0), heads = q.size(1), q_len = q.size(2), k_len = k.size(2);
  if (k.size(0) != batch || v.size(0) != batch || k.size(1) != heads || v.size(1) != heads) return false;
  if (v.size(2) != k_len || k.size(3) != q.size(3) || v.size(3) != q.size(3)) return false;
  if (batch * heads * q_len * k_len == 0 || q.size(3) == 0) return false;  // nothing to fuse; avoids k = 0 in the BLAS
  if (!bias.defined()) return true;
  if (!bias.device().is_cpu() || bias.scalar_type() != torch::kFloat || bias.dim() != 4 || bias.size(3) != k_len) return false;
  const auto one_or = [](int64_t n, int64_t full) { return n == 1 || n == full; };
  return one_or(bias.size(0), batch) && one_or(bias.size(1), heads) && one_or(bias.size(2), q_len);
}

}  // namespace

bool fused_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& bias) {
  // A matrix per thread leaves threads idle when there are fewer matrices than threads (one long
  // sequence on a many-core machine); LibTorch's products then split each matrix over all of them.
  return handles(q, k, v, bias) && q.size(0) * q.size(1) >= at::get_num_threads();
}

torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& bias, double dropout) {
  RECORD_FUNCTION("qa::fused_attention", std::vector<c10::IValue>());  // its BLAS calls are no LibTorch operator
  TORCH_CHECK(handles(q, k, v, bias), "fused_attention: operands it does not handle (see fused_attention_applies)");
  TORCH_CHECK(dropout >= 0.0 && dropout < 1.0, "fused_attention: dropout must be in [0, 1), got ", dropout);
  const bool has_bias = bias.defined();
  // Drawn with LibTorch's generator, as torch::dropout draws (Bernoulli(1 - p) per weight).
  const auto fp32 = q.options().dtype(torch::kFloat);
  const auto keep = dropout > 0.0 ? torch::empty({q.size(0), q.size(1), q.size(2), k.size(2)}, fp32).bernoulli_(1.0 - dropout)
                                  : torch::empty({0}, fp32);
  return FusedAttentionFunction::apply(q, k, v, has_bias ? bias : torch::empty({0}), has_bias, keep, 1.0 / (1.0 - dropout));
}

}  // namespace qa
