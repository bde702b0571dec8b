#include "qa/model/relative_position.hpp"

#include <cmath>

namespace qa {

torch::Tensor relative_position_bucket(const torch::Tensor& relative_position, bool bidirectional, int64_t num_buckets,
                                       int64_t max_distance) {
  auto rp = relative_position.to(torch::kLong);
  auto buckets = torch::zeros_like(rp);
  if (bidirectional) {
    num_buckets /= 2;
    buckets = buckets + (rp > 0).to(torch::kLong) * num_buckets;
    rp = rp.abs();
  } else {
    rp = -torch::min(rp, torch::zeros_like(rp));
  }
  const int64_t max_exact = num_buckets / 2;
  auto is_small = rp < max_exact;
  // Same float32 op sequence as the reference: log(rp / max_exact) / log(max_distance / max_exact) * (nb - max_exact).
  auto large = torch::log(rp.to(torch::kFloat) / static_cast<double>(max_exact)) /
               std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
               static_cast<double>(num_buckets - max_exact);
  auto if_large = max_exact + large.to(torch::kLong);
  if_large = torch::min(if_large, torch::full_like(if_large, num_buckets - 1));
  return buckets + torch::where(is_small, rp, if_large);
}

torch::Tensor relative_position_buckets(int64_t query_length, int64_t key_length, int64_t query_offset,
                                        bool bidirectional, int64_t num_buckets, int64_t max_distance,
                                        const torch::Device& device) {
  const auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  auto context = torch::arange(query_offset, query_offset + query_length, opts).unsqueeze(1);
  auto memory = torch::arange(key_length, opts).unsqueeze(0);
  return relative_position_bucket(memory - context, bidirectional, num_buckets, max_distance);
}

}  // namespace qa
