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

Batch padded_to(const Batch& b, int64_t source_length, int64_t target_length, int64_t pad_id) {
  const int64_t rows = b.input_ids.size(0);
  const int64_t s = std::max(source_length, b.input_ids.size(1)), t = std::max(target_length, b.labels.size(1));
  Batch out;
  out.input_ids = torch::empty({rows, s}, b.input_ids.options());
  out.attention_mask = torch::empty({rows, s}, b.attention_mask.options());
  out.decoder_input_ids = torch::empty({rows, t}, b.decoder_input_ids.options());
  out.labels = torch::empty({rows, t}, b.labels.options());
  copy_padded(b, out, pad_id);
  return out;
}

void copy_padded(const Batch& b, Batch& into, int64_t pad_id) {
  TORCH_CHECK(into.input_ids.size(0) == b.input_ids.size(0) && into.input_ids.size(1) >= b.input_ids.size(1) &&
                  into.labels.size(1) >= b.labels.size(1),
              "copy_padded: a batch of shape ", b.input_ids.sizes(), " / ", b.labels.sizes(), " does not fit ",
              into.input_ids.sizes(), " / ", into.labels.sizes());
  const auto put = [](torch::Tensor& dst, const torch::Tensor& src, int64_t fill) {
    const int64_t n = src.size(1);
    if (dst.size(1) > n) dst.narrow(1, n, dst.size(1) - n).fill_(fill);
    dst.narrow(1, 0, n).copy_(src, /*non_blocking=*/true);
  };
  put(into.input_ids, b.input_ids, pad_id);
  put(into.attention_mask, b.attention_mask, 0);
  put(into.decoder_input_ids, b.decoder_input_ids, pad_id);
  put(into.labels, b.labels, kIgnoreLabel);
  into.source_tokens = b.source_tokens;
  into.target_tokens = b.target_tokens;
}

}  // namespace qa
