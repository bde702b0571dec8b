// Beam search with the semantics of transformers 4.35's BeamSearchScorer (the reference the parity
// tests compare with): per input, the 2*num_beams best (beam, token) continuations by summed
// log-probability; an EOS continuation among the first num_beams becomes a finished hypothesis, the
// first num_beams others become the next beams; an input is done when BeamHypotheses says so.
#include <algorithm>
#include <numeric>

#include "qa/model/beam_hypotheses.hpp"
#include "qa/model/generate.hpp"

namespace qa {

Generation beam_search_generate(T5Model& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                const GenerateOptions& options) {
  torch::NoGradGuard no_grad;
  const T5Config& c = model->config();
  const int64_t batch = input_ids.size(0);
  const int64_t beams = options.num_beams;
  const int64_t max_length = options.max_new_tokens + 1;  // the decoder start token counts, as in HF
  const auto device = input_ids.device();
  const auto start = static_cast<int32_t>(c.decoder_start_token_id);

  std::vector<BeamHypotheses> finished(static_cast<std::size_t>(batch),
                                       BeamHypotheses(beams, options.length_penalty, options.early_stopping));
  // Active inputs (original index) and their rows: `beams` consecutive rows per active input.
  std::vector<int64_t> items(static_cast<std::size_t>(batch));
  std::iota(items.begin(), items.end(), int64_t{0});
  auto row_of_input = torch::arange(batch, torch::TensorOptions().dtype(torch::kLong).device(device))
                          .repeat_interleave(beams);
  auto encoder_states = model->encode(input_ids, attention_mask).index_select(0, row_of_input);
  auto mask = attention_mask.index_select(0, row_of_input);
  DecoderState state;
  if (options.use_cache) state = model->start_decoding(encoder_states, mask);

  const auto rows0 = static_cast<std::size_t>(batch * beams);
  std::vector<std::vector<int32_t>> seqs(rows0, std::vector<int32_t>{start});
  // Only the first beam of each input is live at the start; the others would duplicate it.
  std::vector<float> beam_scores(rows0, 0.0f);
  for (std::size_t r = 0; r < rows0; ++r) {
    if (r % static_cast<std::size_t>(beams) != 0) beam_scores[r] = -1e9f;
  }
  auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  auto last = torch::full({batch * beams}, c.decoder_start_token_id, long_opts);
  torch::Tensor prefix;
  if (!options.use_cache) prefix = last.unsqueeze(1);

  for (int64_t cur_len = 1; cur_len < max_length && !items.empty(); ++cur_len) {
    auto logits = options.use_cache ? model->decode_step(last, state)
                                    : model->decode(prefix, encoder_states, mask).select(1, -1);
    auto log_probs = torch::log_softmax(logits.to(torch::kFloat), -1);
    const int64_t vocab = log_probs.size(1);
    const auto active = static_cast<int64_t>(items.size());
    auto scores = log_probs + torch::tensor(beam_scores).to(device).unsqueeze(1);
    auto top = torch::topk(scores.view({active, beams * vocab}), 2 * beams, 1, /*largest=*/true, /*sorted=*/true);
    auto top_scores = std::get<0>(top).to(torch::kCPU).contiguous();
    auto top_ids = std::get<1>(top).to(torch::kCPU).contiguous();
    auto ts = top_scores.accessor<float, 2>();
    auto ti = top_ids.accessor<int64_t, 2>();

    std::vector<int64_t> next_items, next_rows, next_tokens;
    std::vector<float> next_scores;
    std::vector<std::vector<int32_t>> next_seqs;
    for (int64_t a = 0; a < active; ++a) {
      BeamHypotheses& hyps = finished[static_cast<std::size_t>(items[static_cast<std::size_t>(a)])];
      std::vector<int64_t> rows, tokens;
      std::vector<float> item_scores;
      for (int64_t rank = 0; rank < 2 * beams && static_cast<int64_t>(rows.size()) < beams; ++rank) {
        const int64_t row = a * beams + ti[a][rank] / vocab;
        const int64_t token = ti[a][rank] % vocab;
        if (token == c.eos_token_id) {
          if (rank < beams) hyps.add(seqs[static_cast<std::size_t>(row)], ts[a][rank]);
          continue;
        }
        rows.push_back(row);
        tokens.push_back(token);
        item_scores.push_back(ts[a][rank]);
      }
      // Scores of this step were computed at length cur_len + 1 (transformers' convention).
      if (hyps.is_done(ts[a][0], cur_len + 1)) continue;
      next_items.push_back(items[static_cast<std::size_t>(a)]);
      for (std::size_t k = 0; k < rows.size(); ++k) {
        auto seq = seqs[static_cast<std::size_t>(rows[k])];
        seq.push_back(static_cast<int32_t>(tokens[k]));
        next_seqs.push_back(std::move(seq));
        next_rows.push_back(rows[k]);
        next_tokens.push_back(tokens[k]);
        next_scores.push_back(item_scores[k]);
      }
    }
    items = std::move(next_items);
    seqs = std::move(next_seqs);
    beam_scores = std::move(next_scores);
    if (items.empty() || cur_len + 1 >= max_length) break;
    // Reorder (and shrink) every per-row tensor to the surviving beams.
    auto index = torch::tensor(next_rows, torch::kLong).to(device);
    last = torch::tensor(next_tokens, torch::kLong).to(device);
    if (options.use_cache) {
      state.select(index);
    } else {
      encoder_states = encoder_states.index_select(0, index);
      mask = mask.index_select(0, index);
      prefix = torch::cat({prefix.index_select(0, index), last.unsqueeze(1)}, 1);
    }
  }
  // Inputs still open at max_length: their live beams become hypotheses too.
  for (std::size_t a = 0; a < items.size(); ++a) {
    for (int64_t k = 0; k < beams; ++k) {
      const std::size_t row = a * static_cast<std::size_t>(beams) + static_cast<std::size_t>(k);
      finished[static_cast<std::size_t>(items[a])].add(seqs[row], beam_scores[row]);
    }
  }
  Generation out;
  for (const auto& hyps : finished) {
    const Hypothesis& best = hyps.best();
    out.ids.emplace_back(best.tokens.begin() + 1, best.tokens.end());
    out.scores.push_back(best.score);
  }
  return out;
}

Generation generate(T5Model& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                    const GenerateOptions& options) {
  if (options.num_beams > 1) return beam_search_generate(model, input_ids, attention_mask, options);
  Generation out;
  out.ids = greedy_generate(model, input_ids, attention_mask, options);
  out.scores.assign(out.ids.size(), 0.0);
  return out;
}

}  // namespace qa
