#include "qa/model/beam_hypotheses.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace qa {

BeamHypotheses::BeamHypotheses(int64_t num_beams, double length_penalty, bool early_stopping)
    : num_beams_(num_beams), length_penalty_(length_penalty), early_stopping_(early_stopping) {}

void BeamHypotheses::add(std::vector<int32_t> tokens, double sum_logprobs) {
  const double score = sum_logprobs / std::pow(static_cast<double>(tokens.size()), length_penalty_);
  if (static_cast<int64_t>(beams_.size()) >= num_beams_ && !(score > worst_score_)) return;
  beams_.push_back({score, std::move(tokens)});
  if (static_cast<int64_t>(beams_.size()) > num_beams_) {
    // Drop the worst; the new worst is the second lowest of the list before the drop, ties broken
    // by insertion order, exactly as transformers sorts (score, index) pairs.
    std::vector<std::size_t> order(beams_.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return beams_[a].score < beams_[b].score; });
    worst_score_ = beams_[order[1]].score;
    beams_.erase(beams_.begin() + static_cast<std::ptrdiff_t>(order[0]));
  } else {
    worst_score_ = std::min(score, worst_score_);
  }
}

bool BeamHypotheses::is_done(double best_sum_logprobs, int64_t cur_len) const {
  if (static_cast<int64_t>(beams_.size()) < num_beams_) return false;
  if (early_stopping_) return true;
  const double highest_attainable = best_sum_logprobs / std::pow(static_cast<double>(cur_len), length_penalty_);
  return worst_score_ >= highest_attainable;
}

const Hypothesis& BeamHypotheses::best() const {
  if (beams_.empty()) throw std::logic_error("BeamHypotheses::best on an empty set");
  const Hypothesis* best = &beams_.front();
  for (const auto& h : beams_) {
    if (h.score >= best->score) best = &h;  // >=: the last of equal scores wins
  }
  return *best;
}

}  // namespace qa
