#include "qa/data/collate.hpp"

#include <algorithm>

namespace qa {

Batch Batch::to(const torch::Device& device) const {
  Batch b = *this;
  b.input_ids = input_ids.to(device, /*non_blocking=*/true);
  b.attention_mask = attention_mask.to(device, true);
  b.decoder_input_ids = decoder_input_ids.to(device, true);
  b.labels = labels.to(device, true);
  return b;
}

Batch collate(const EncodedDataset& data, const std::vector<std::size_t>& indices, int64_t pad_id,
              int64_t decoder_start_id) {
  const int64_t n = static_cast<int64_t>(indices.size());
  std::size_t max_s = 1, max_t = 1;
  for (auto i : indices) {
    max_s = std::max(max_s, data.items[i].source.size());
    max_t = std::max(max_t, data.items[i].target.size());
  }
  const int64_t s = static_cast<int64_t>(max_s), t = static_cast<int64_t>(max_t);
  Batch b;
  b.input_ids = torch::full({n, s}, pad_id, torch::kLong);
  b.attention_mask = torch::zeros({n, s}, torch::kLong);
  b.decoder_input_ids = torch::full({n, t}, pad_id, torch::kLong);
  b.labels = torch::full({n, t}, kIgnoreLabel, torch::kLong);
  auto ids = b.input_ids.accessor<int64_t, 2>();
  auto mask = b.attention_mask.accessor<int64_t, 2>();
  auto dec = b.decoder_input_ids.accessor<int64_t, 2>();
  auto lab = b.labels.accessor<int64_t, 2>();
  for (int64_t r = 0; r < n; ++r) {
    const auto& ex = data.items[indices[static_cast<std::size_t>(r)]];
    for (std::size_t j = 0; j < ex.source.size(); ++j) {
      ids[r][static_cast<int64_t>(j)] = ex.source[j];
      mask[r][static_cast<int64_t>(j)] = 1;
    }
    dec[r][0] = decoder_start_id;
    for (std::size_t j = 0; j < ex.target.size(); ++j) {
      lab[r][static_cast<int64_t>(j)] = ex.target[j];
      if (j + 1 < static_cast<std::size_t>(t)) dec[r][static_cast<int64_t>(j) + 1] = ex.target[j];
    }
    b.source_tokens += static_cast<int64_t>(ex.source.size());
    b.target_tokens += static_cast<int64_t>(ex.target.size());
  }
  return b;
}

}  // namespace qa
