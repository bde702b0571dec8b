// T5's attention core on the CPU, softmax(q k^T + bias) v, as one pass per (batch, head) matrix
// forward and one backward: each thread takes whole matrices (its own share, then a slower thread's:
// runtime/parallel_tasks), multiplies them through the BLAS's sgemm directly (oneDNN's where the BLAS
// runs a generic kernel: model/onednn_linear), and adds the bias, normalises and (backward)
// differentiates the softmax on the [Q, K] matrix it just computed, while it is still in cache. Separate operators instead stream every [B, H, Q, K] tensor through
// memory four more times (bias add, softmax, softmax backward, the bias gradient).
// In bf16 (q, k, v as autocast's projections return them) the products are oneDNN's bf16 ones
// (dnnl_gemm_bf16bf16f32, fp32 accumulation) on the heads' strided views: no copies of q, k^T or the
// output into batches for LibTorch's bmm. The scores, the bias, the softmax and every gradient of a
// [Q, K] matrix stay fp32; the weights and the scores' gradient are rounded to bf16 as operands of
// the next product, the output and q, k, v's gradients once as results, as autocast's products round
// them. No 1/sqrt(d_kv) scaling: T5 folds it into the initialisation of q.
#pragma once

#include <torch/torch.h>

namespace qa {

// True when fused_attention handles these operands: CPU; fp32 (CPU autocast off) with the BLAS's sgemm
// callable directly (runtime/blas), or bf16 where oneDNN's bf16 product runs (onednn_gemm_bf16_available);
// q [B, H, Q, D], k and v [B, H, K, D] of one type, bias undefined or an fp32
// [B or 1, H or 1, Q or 1, K] tensor; and at least as many (batch, head) matrices as LibTorch has
// threads. Otherwise callers use products and softmax.
bool fused_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& bias);

// dropout(softmax(q k^T + bias, -1)) v in q's type, differentiable in q, k, v and bias (its gradient
// fp32, summed over the dimensions it broadcasts over). Dropout (probability in [0, 1); 0: none) zeroes
// weights with LibTorch's generator and scales the rest by 1 / (1 - p), as torch::dropout in training
// does. The result is [B, H, Q, D] laid out as [B, Q, H, D], so that merging the heads afterwards is a
// view. Each matrix is computed by one thread, so the bits do not
// depend on the number of threads. Rows whose keys are all masked with the lowest float give the
// mean of the values, as softmax does.
torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& bias, double dropout = 0.0);

}  // namespace qa
