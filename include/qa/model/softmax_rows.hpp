// Softmax of one fp32 row and its backward, in place, vectorised for the CPU: the inner loops of
// qa-train's own attention kernels (model/fused_attention, model/bias_softmax); the row maximum also
// for the loss (train/fused_cross_entropy). Torch-free header.
#pragma once

#include <cstdint>

namespace qa {

// The row's largest entry (NaNs skipped; -inf for n = 0).
float row_max(const float* x, int64_t n);

// x becomes softmax(x). e^x below e^-87 is taken as 0, so masked keys get exactly 0, as in softmax;
// a row whose entries are all the lowest float gives equal weights, as softmax does.
void softmax_row(float* x, int64_t n);

// dp becomes p * (dp - sum_j p_j dp_j): the gradient of softmax's input from that of its output p.
void softmax_backward_row(const float* p, float* dp, int64_t n);

}  // namespace qa
