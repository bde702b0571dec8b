// The squared L2 norm of a flat fp32 buffer on the CPU, for gradient clipping: one pass at memory
// speed over LibTorch's threads. LibTorch 1.13's norm of the flat gradient ran on one thread with one
// accumulator (15-17 ms per flan-t5-small step). Torch-free header.
#pragma once

#include <cstdint>

namespace qa {

// Sum of x[i]^2 over [0, n), accumulated in double. Fixed blocks summed in order, so the bits do not
// depend on the number of threads. Any NaN gives NaN, any infinity (and no NaN) infinity.
double sum_of_squares_cpu(const float* x, int64_t n);

}  // namespace qa
