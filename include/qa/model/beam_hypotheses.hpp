// The finished hypotheses of one input during beam search, with the semantics of Hugging Face
// transformers' BeamHypotheses (4.35): a hypothesis of length L (decoder start token included, EOS
// excluded) scores sum_logprobs / L^length_penalty; at most num_beams are kept; "done" follows
// early_stopping (true: as soon as num_beams are finished; false: when no open beam can still beat
// the worst kept one, estimated from the current length).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace qa {

struct Hypothesis {
  double score = 0;             // sum_logprobs / length^length_penalty
  std::vector<int32_t> tokens;  // starts with the decoder start token
};

class BeamHypotheses {
 public:
  BeamHypotheses(int64_t num_beams, double length_penalty, bool early_stopping);

  void add(std::vector<int32_t> tokens, double sum_logprobs);
  // best_sum_logprobs: the best candidate score of this step; cur_len: the length those candidates
  // were scored at (current sequence length + 1), as transformers passes it.
  bool is_done(double best_sum_logprobs, int64_t cur_len) const;
  // The best hypothesis; among equal scores the one added last (transformers pops a stable sort).
  const Hypothesis& best() const;

  std::size_t size() const { return beams_.size(); }
  double worst_score() const { return worst_score_; }

 private:
  int64_t num_beams_;
  double length_penalty_;
  bool early_stopping_;
  double worst_score_ = 1e9;
  std::vector<Hypothesis> beams_;  // in insertion order (ties are broken by it)
};

}  // namespace qa
