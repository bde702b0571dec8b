// Which examples go into which micro-batch, epoch by epoch: a seeded shuffle that depends only on
// (seed, epoch), so that any position (epoch, batch) can be reproduced without replaying the run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "qa/util/random.hpp"

namespace qa {

class BatchSampler {
 public:
  BatchSampler(std::size_t num_examples, std::size_t batch_size, uint64_t seed, bool shuffle);
  // Length grouping (Hugging Face's group_by_length): after the shuffle, examples are sorted by
  // `lengths` within mega-batches of `group_batches` batches, and the batches of the epoch are then
  // shuffled, so that a batch holds similar lengths (little padding) while the order stays random.
  BatchSampler(std::vector<std::size_t> lengths, std::size_t batch_size, uint64_t seed, std::size_t group_batches);

  std::size_t batches_per_epoch() const;
  // The micro-batches of `epoch` (the last one may be smaller).
  std::vector<std::vector<std::size_t>> epoch_batches(int64_t epoch) const;

 private:
  std::size_t num_examples_;
  std::size_t batch_size_;
  uint64_t seed_;
  bool shuffle_;
  std::vector<std::size_t> lengths_;  // empty: no length grouping
  std::size_t group_batches_ = 0;
};

// Data parallelism: rank `rank` of `world` takes this contiguous share of a global micro-batch
// (sizes differ by at most one; a share may be empty). The shares of all ranks partition the batch,
// so every example is used exactly once per epoch whatever the world size.
std::vector<std::size_t> rank_share(const std::vector<std::size_t>& batch, int64_t rank, int64_t world);

}  // namespace qa
