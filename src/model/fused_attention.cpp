#include "qa/model/fused_attention.hpp"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cstring>
#include <limits>
#include <vector>

#include "qa/model/bf16_rows.hpp"
#include "qa/model/bias_rows.hpp"
#include "qa/model/onednn_linear.hpp"
#include "qa/model/softmax_rows.hpp"
#include "qa/model/vector_math.hpp"
#include "qa/runtime/blas.hpp"
#include "qa/runtime/parallel_tasks.hpp"
#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Dropout of attention weights: out = x * keep * scale, keep 0 or 1 (out may be x).
QA_VECTOR_CLONES void apply_keep(const float* x, const float* keep, float scale, float* out, int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j] = x[j] * keep[j] * scale;
}

// The weights the values are multiplied with: the softmax's p itself, or with dropout (keep not null)
// p * keep * scale, written to scratch (n elements).
const float* weights_used(const float* p, const float* keep, float scale, std::vector<float>& scratch, int64_t n) {
  if (!keep) return p;
  apply_keep(p, keep, scale, scratch.data(), n);
  return scratch.data();
}

// Where the (b, h) matrix of a [B, H, rows, cols] operand starts, and its row stride, for the BLAS:
// innermost stride 1 (callers make it so), rows at least cols apart (a single row may have any stride).
template <typename T>
struct Matrices {
  const T* data;
  int64_t batch_stride, head_stride;
  int ld;

  explicit Matrices(const torch::Tensor& t)
      : data(t.data_ptr<T>()),
        batch_stride(t.stride(0)),
        head_stride(t.stride(1)),
        ld(static_cast<int>(t.size(2) == 1 ? std::max<int64_t>(t.size(3), 1) : t.stride(2))) {}
  const T* at(int64_t b, int64_t h) const { return data + b * batch_stride + h * head_stride; }
  T* mut(int64_t b, int64_t h) const { return const_cast<T*>(at(b, h)); }
};

// A BLAS-readable layout: innermost stride 1, and rows that do not overlap.
bool blas_layout(const torch::Tensor& t) {
  if (t.size(3) > 1 && t.stride(3) != 1) return false;
  return t.size(2) == 1 || t.stride(2) >= std::max<int64_t>(t.size(3), 1);
}
torch::Tensor as_blas_layout(const torch::Tensor& t) { return blas_layout(t) ? t : t.contiguous(); }

// [B, H, Q, D] with the strides of [B, Q, H, D]: heads merge back into [B, Q, H * D] as a view.
torch::Tensor empty_heads_last(int64_t b, int64_t h, int64_t q, int64_t d, const torch::TensorOptions& options) {
  return torch::empty_strided({b, h, q, d}, {q * h * d, d, h * d, 1}, options);
}

// One matrix's product: the BLAS's sgemm, or oneDNN's where LibTorch's BLAS runs below the CPU (a
// generic OpenBLAS kernel: ~40 GFLOP/s per core where oneDNN runs ~100), as the projections decide
// (model/onednn_linear). Both run single-threaded inside the parallel region.
void matrix_product(bool trans_a, bool trans_b, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                    float beta, float* c, int ldc) {
  if (onednn_linear_forward()) {
    onednn_sgemm_row_major(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  } else {
    sgemm_row_major(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  }
}

using BF16 = c10::BFloat16;

// The same with bf16 operands (under autocast): oneDNN's bf16 product, accumulating in fp32.
void matrix_product(bool trans_a, bool trans_b, int m, int n, int k, const BF16* a, int lda, const BF16* b, int ldb,
                    float beta, float* c, int ldc) {
  onednn_gemm_bf16_row_major(trans_a, trans_b, m, n, k, 1.0f, reinterpret_cast<const std::uint16_t*>(a), lda,
                             reinterpret_cast<const std::uint16_t*>(b), ldb, beta, c, ldc);
}

// A product whose result is an operand's gradient or the output, in the operands' type: fp32 straight
// into c; bf16 through fp32 rows in scratch, each rounded once into c (as LibTorch's bf16 products round).
void product_into(bool trans_a, bool trans_b, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                  float* c, int ldc, std::vector<float>& /*scratch*/) {
  matrix_product(trans_a, trans_b, m, n, k, a, lda, b, ldb, 0.0f, c, ldc);
}
void product_into(bool trans_a, bool trans_b, int m, int n, int k, const BF16* a, int lda, const BF16* b, int ldb,
                  BF16* c, int ldc, std::vector<float>& scratch) {
  scratch.resize(static_cast<std::size_t>(m) * n);
  matrix_product(trans_a, trans_b, m, n, k, a, lda, b, ldb, 0.0f, scratch.data(), n);
  for (int i = 0; i < m; ++i) narrow_bf16(scratch.data() + static_cast<int64_t>(i) * n, c + static_cast<int64_t>(i) * ldc, n);
}

// An fp32 [Q, K] matrix (weights, the scores' gradient) as an operand of the next product: itself in
// fp32; rounded to bf16 into scratch under bf16, as autocast's products take it.
const float* as_operand(const float* m, int64_t /*n*/, std::vector<float>& /*scratch*/) { return m; }
const BF16* as_operand(const float* m, int64_t n, std::vector<BF16>& scratch) {
  scratch.resize(static_cast<std::size_t>(n));
  narrow_bf16(m, scratch.data(), n);
  return scratch.data();
}

// T: float, or c10::BFloat16 for q, k, v, the output and their gradients (the weights, the bias and
// every [Q, K] matrix stay fp32, as the separate operators keep them under autocast on the CPU).
template <typename T>
class FusedAttentionFunction : public torch::autograd::Function<FusedAttentionFunction<T>> {
 public:
  // has_bias: whether bias is an operand (autograd's apply takes no undefined tensors). keep: dropout's
  // draws for the weights, 1 or 0 each, [B, H, Q, K], or empty without dropout; keep_scale = 1 / (1 - p).
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q_in, const torch::Tensor& k_in,
                               const torch::Tensor& v_in, const torch::Tensor& bias_in, bool has_bias,
                               const torch::Tensor& keep, double keep_scale) {
    const auto q = as_blas_layout(q_in), k = as_blas_layout(k_in), v = as_blas_layout(v_in);
    const torch::Tensor bias = has_bias ? with_contiguous_keys(bias_in) : bias_in;
    const int64_t batch = q.size(0), heads = q.size(1), q_len = q.size(2), d = q.size(3), k_len = k.size(2);
    // The attention weights, kept for the backward pass as the separate operators keep them.
    auto probs = torch::empty({batch, heads, q_len, k_len}, q.options().dtype(torch::kFloat));
    auto out = empty_heads_last(batch, heads, q_len, d, q.options());
    const Matrices<T> mq(q), mk(k), mv(v), mo(out);
    const BiasRows rows = has_bias ? BiasRows(bias) : BiasRows();
    float* p_all = probs.data_ptr<float>();
    const float* keep_all = keep.numel() > 0 ? keep.data_ptr<float>() : nullptr;
    const auto scale = static_cast<float>(keep_scale);
    const int iq = static_cast<int>(q_len), ik = static_cast<int>(k_len), id = static_cast<int>(d);
    parallel_tasks(batch * heads, [&](TaskQueue& queue) {
      std::vector<float> dropped(keep_all ? q_len * k_len : 0), result;
      std::vector<T> operand;
      for (int64_t t; queue.next(t);) {
        const int64_t b = t / heads, h = t % heads;
        float* p = p_all + t * q_len * k_len;
        // The bias is copied in first and the product added to it (beta = 1): the BLAS would otherwise
        // zero the matrix for beta = 0 (a pass of its own), and the bias would take another.
        if (rows.data) {
          for (int64_t i = 0; i < q_len; ++i) std::memcpy(p + i * k_len, rows.row(b, h, i), k_len * sizeof(float));
        }
        matrix_product(false, true, iq, ik, id, mq.at(b, h), mq.ld, mk.at(b, h), mk.ld, rows.data ? 1.0f : 0.0f, p, ik);
        for (int64_t i = 0; i < q_len; ++i) softmax_row(p + i * k_len, k_len);
        // p stays undropped: the softmax's backward needs it.
        const float* kp = keep_all ? keep_all + t * q_len * k_len : nullptr;
        const T* w = as_operand(weights_used(p, kp, scale, dropped, q_len * k_len), q_len * k_len, operand);
        product_into(false, false, iq, id, ik, w, ik, mv.at(b, h), mv.ld, mo.mut(b, h), mo.ld, result);
      }
    });
    ctx->save_for_backward({q, k, v, probs, keep});
    ctx->saved_data["keep_scale"] = keep_scale;
    ctx->saved_data["bias_sizes"] = has_bias ? bias_in.sizes().vec() : std::vector<int64_t>{};
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3], &keep = saved[4];
    const auto g = as_blas_layout(grads[0]);
    const int64_t batch = q.size(0), heads = q.size(1), q_len = q.size(2), d = q.size(3), k_len = k.size(2);
    // Gradients in their inputs' layouts (empty_like keeps a dense view's strides): the heads'
    // gradients then flow back through split_heads' views without copies.
    auto dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    const auto bias_sizes = ctx->saved_data["bias_sizes"].toIntVector();
    const bool bias_grad = !bias_sizes.empty() && ctx->needs_input_grad(3);
    // The bias's gradient is the scores' gradient, summed over what the bias broadcasts over; kept
    // whole only when it is needed, otherwise each thread reuses one matrix of scratch.
    torch::Tensor dscores = bias_grad ? torch::empty({batch, heads, q_len, k_len}, probs.options()) : torch::Tensor();
    const Matrices<T> mq(q), mk(k), mv(v), mg(g), mdq(dq), mdk(dk), mdv(dv);
    const float* p_all = probs.data_ptr<float>();
    float* ds_all = bias_grad ? dscores.data_ptr<float>() : nullptr;
    const float* keep_all = keep.numel() > 0 ? keep.data_ptr<float>() : nullptr;
    const auto scale = static_cast<float>(ctx->saved_data["keep_scale"].toDouble());
    const int iq = static_cast<int>(q_len), ik = static_cast<int>(k_len), id = static_cast<int>(d);
    parallel_tasks(batch * heads, [&](TaskQueue& queue) {
      std::vector<float> scratch(ds_all ? 0 : q_len * k_len), dropped(keep_all ? q_len * k_len : 0), result;
      std::vector<T> operand;
      for (int64_t t; queue.next(t);) {
        const int64_t b = t / heads, h = t % heads;
        const float* p = p_all + t * q_len * k_len;
        float* ds = ds_all ? ds_all + t * q_len * k_len : scratch.data();
        const float* kp = keep_all ? keep_all + t * q_len * k_len : nullptr;
        // as the forward pass had them
        const T* w = as_operand(weights_used(p, kp, scale, dropped, q_len * k_len), q_len * k_len, operand);
        // dV = W^T dO; dW = dO V^T, through the dropout to dP, then the softmax's backward turns it into dS in place
        product_into(true, false, ik, id, iq, w, ik, mg.at(b, h), mg.ld, mdv.mut(b, h), mdv.ld, result);
        matrix_product(false, true, iq, ik, id, mg.at(b, h), mg.ld, mv.at(b, h), mv.ld, 0.0f, ds, ik);
        if (kp) apply_keep(ds, kp, scale, ds, q_len * k_len);
        for (int64_t i = 0; i < q_len; ++i) softmax_backward_row(p + i * k_len, ds + i * k_len, k_len);
        // dQ = dS K; dK = dS^T Q
        const T* dst = as_operand(ds, q_len * k_len, operand);
        product_into(false, false, iq, id, ik, dst, ik, mk.at(b, h), mk.ld, mdq.mut(b, h), mdq.ld, result);
        product_into(true, false, ik, id, iq, dst, ik, mq.at(b, h), mq.ld, mdk.mut(b, h), mdk.ld, result);
      }
    });
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
  // fp32 outside autocast (under it, autocast decides the products' dtype), or bf16 where oneDNN's
  // bf16 product runs: what autocast's projections return.
  const auto dtype = q.scalar_type();
  if (dtype == torch::kFloat) {
    if (!blas_sgemm_available() || compat::autocast_state(c10::DeviceType::CPU).enabled) return false;
  } else if (dtype != torch::kBFloat16 || !onednn_gemm_bf16_available()) {
    return false;
  }
  for (const auto* t : {&q, &k, &v}) {
    if (!t->device().is_cpu() || t->scalar_type() != dtype || t->dim() != 4 || !fits_int(*t)) return false;
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
  const auto f32 = q.options().dtype(torch::kFloat);
  const auto keep = dropout > 0.0 ? torch::empty({q.size(0), q.size(1), q.size(2), k.size(2)}, f32).bernoulli_(1.0 - dropout)
                                  : torch::empty({0}, f32);
  const auto b = has_bias ? bias : torch::empty({0}, f32);
  const double keep_scale = 1.0 / (1.0 - dropout);
  if (q.scalar_type() == torch::kBFloat16) return FusedAttentionFunction<BF16>::apply(q, k, v, b, has_bias, keep, keep_scale);
  return FusedAttentionFunction<float>::apply(q, k, v, b, has_bias, keep, keep_scale);
}

}  // namespace qa
