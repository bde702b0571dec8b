// Collates the next optimizer step's micro-batches on a background thread while the current step
// computes; for a GPU into page-locked memory, so that the copies to the device do not block the host.
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <future>
#include <vector>

#include "qa/data/collate.hpp"
#include "qa/data/encoded_dataset.hpp"

namespace qa {

using MicroBatches = std::vector<std::vector<std::size_t>>;  // example indices per micro-batch

class BatchPrefetcher {
 public:
  BatchPrefetcher(const EncodedDataset& data, int64_t pad_id, int64_t decoder_start_id, const torch::Device& device);
  ~BatchPrefetcher();
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // Starts collating `micro_batches` for a later take() (replaces an earlier prefetch not taken).
  void prefetch(MicroBatches micro_batches);
  // `micro_batches` as batches on the device: the prefetched ones when they are the same examples
  // (the usual case), otherwise collated now. Empty micro-batches give empty Batch entries.
  std::vector<Batch> take(const MicroBatches& micro_batches);

 private:
  std::vector<Batch> collate_all(const MicroBatches& micro_batches) const;  // on the host

  const EncodedDataset& data_;
  int64_t pad_id_, decoder_start_id_;
  torch::Device device_;
  MicroBatches pending_;
  std::future<std::vector<Batch>> future_;
};

}  // namespace qa
