#include "qa/data/batch_prefetcher.hpp"

#include <utility>

namespace qa {

BatchPrefetcher::BatchPrefetcher(const EncodedDataset& data, int64_t pad_id, int64_t decoder_start_id,
                                 const torch::Device& device)
    : data_(data), pad_id_(pad_id), decoder_start_id_(decoder_start_id), device_(device) {}

BatchPrefetcher::~BatchPrefetcher() {
  if (future_.valid()) future_.wait();  // the thread reads data_: let it finish first
}

std::vector<Batch> BatchPrefetcher::collate_all(const MicroBatches& micro_batches) const {
  std::vector<Batch> out;
  out.reserve(micro_batches.size());
  for (const auto& m : micro_batches) {
    if (m.empty()) {
      out.emplace_back();
      continue;
    }
    Batch b = collate(data_, m, pad_id_, decoder_start_id_);
    if (device_.is_cuda()) {  // page-locked: Batch::to's non-blocking copies then really overlap
      b.input_ids = b.input_ids.pin_memory();
      b.attention_mask = b.attention_mask.pin_memory();
      b.decoder_input_ids = b.decoder_input_ids.pin_memory();
      b.labels = b.labels.pin_memory();
    }
    out.push_back(std::move(b));
  }
  return out;
}

void BatchPrefetcher::prefetch(MicroBatches micro_batches) {
  if (future_.valid()) future_.wait();
  pending_ = std::move(micro_batches);
  future_ = std::async(std::launch::async, [this, m = pending_] { return collate_all(m); });
}

std::vector<Batch> BatchPrefetcher::take(const MicroBatches& micro_batches) {
  std::vector<Batch> host;
  if (future_.valid()) {
    auto ready = future_.get();  // rethrows what the thread threw
    if (pending_ == micro_batches) host = std::move(ready);
  }
  if (host.empty() && !micro_batches.empty()) host = collate_all(micro_batches);
  for (auto& b : host) {
    if (b.input_ids.defined() && !device_.is_cpu()) b = b.to(device_);
  }
  return host;
}

}  // namespace qa
