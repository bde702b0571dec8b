#include "qa/model/generate.hpp"

namespace qa {

std::vector<std::vector<int32_t>> greedy_generate(T5Model& model, const torch::Tensor& input_ids,
                                                  const torch::Tensor& attention_mask, const GenerateOptions& options) {
  torch::NoGradGuard no_grad;
  const T5Config& c = model->config();
  const int64_t batch = input_ids.size(0);
  const auto device = input_ids.device();
  std::vector<std::vector<int32_t>> out(static_cast<std::size_t>(batch));
  std::vector<int64_t> rows(static_cast<std::size_t>(batch));  // active row -> original row
  for (int64_t i = 0; i < batch; ++i) rows[static_cast<std::size_t>(i)] = i;

  auto encoder_states = model->encode(input_ids, attention_mask);
  auto mask = attention_mask;
  DecoderState state;
  if (options.use_cache) state = model->start_decoding(encoder_states, attention_mask);
  auto prefix = torch::full({batch, 1}, c.decoder_start_token_id, torch::TensorOptions().dtype(torch::kLong).device(device));

  for (int64_t step = 0; step < options.max_new_tokens && !rows.empty(); ++step) {
    torch::Tensor logits = options.use_cache ? model->decode_step(prefix.select(1, -1), state)
                                             : model->decode(prefix, encoder_states, mask).select(1, -1);
    auto next = logits.to(torch::kFloat).argmax(-1);
    auto next_cpu = next.to(torch::kCPU);
    auto acc = next_cpu.accessor<int64_t, 1>();
    std::vector<int64_t> keep;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const int64_t token = acc[static_cast<int64_t>(r)];
      if (token == c.eos_token_id) continue;
      out[static_cast<std::size_t>(rows[r])].push_back(static_cast<int32_t>(token));
      keep.push_back(static_cast<int64_t>(r));
    }
    prefix = torch::cat({prefix, next.unsqueeze(1)}, 1);
    if (keep.size() == rows.size()) continue;
    // Drop finished rows from every tensor of the decode.
    std::vector<int64_t> new_rows;
    for (auto r : keep) new_rows.push_back(rows[static_cast<std::size_t>(r)]);
    rows = std::move(new_rows);
    if (rows.empty()) break;
    auto index = torch::tensor(keep, torch::kLong).to(device);
    prefix = prefix.index_select(0, index);
    if (options.use_cache) {
      state.select(index);
    } else {
      encoder_states = encoder_states.index_select(0, index);
      mask = mask.index_select(0, index);
    }
  }
  return out;
}

}  // namespace qa
