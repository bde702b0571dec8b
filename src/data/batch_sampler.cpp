#include "qa/data/batch_sampler.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>

namespace qa {

BatchSampler::BatchSampler(std::size_t num_examples, std::size_t batch_size, uint64_t seed, bool shuffle)
    : num_examples_(num_examples), batch_size_(batch_size), seed_(seed), shuffle_(shuffle) {}

BatchSampler::BatchSampler(std::vector<std::size_t> lengths, std::size_t batch_size, uint64_t seed,
                           std::size_t group_batches)
    : num_examples_(lengths.size()),
      batch_size_(batch_size),
      seed_(seed),
      shuffle_(true),
      lengths_(std::move(lengths)),
      group_batches_(group_batches) {}

std::size_t BatchSampler::batches_per_epoch() const { return (num_examples_ + batch_size_ - 1) / batch_size_; }

std::vector<std::vector<std::size_t>> BatchSampler::epoch_batches(int64_t epoch) const {
  std::vector<std::size_t> order(num_examples_);
  std::iota(order.begin(), order.end(), std::size_t{0});
  SplitMix64 rng(seed_ * 0x100000001B3ull + static_cast<uint64_t>(epoch) + 1);
  if (shuffle_) shuffle(order, rng);
  if (!lengths_.empty()) {
    const std::size_t mega = batch_size_ * std::max<std::size_t>(1, group_batches_);
    for (std::size_t i = 0; i < order.size(); i += mega) {
      auto end = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), i + mega));
      std::stable_sort(order.begin() + static_cast<std::ptrdiff_t>(i), end,
                       [&](std::size_t a, std::size_t b) { return lengths_[a] > lengths_[b]; });
    }
  }
  std::vector<std::vector<std::size_t>> batches;
  batches.reserve(batches_per_epoch());
  for (std::size_t i = 0; i < order.size(); i += batch_size_) {
    batches.emplace_back(order.begin() + i, order.begin() + std::min(order.size(), i + batch_size_));
  }
  if (!lengths_.empty()) shuffle(batches, rng);
  return batches;
}

std::vector<std::size_t> rank_share(const std::vector<std::size_t>& batch, int64_t rank, int64_t world) {
  const auto n = static_cast<int64_t>(batch.size());
  const int64_t begin = rank * n / world, end = (rank + 1) * n / world;
  return {batch.begin() + begin, batch.begin() + end};
}

}  // namespace qa
