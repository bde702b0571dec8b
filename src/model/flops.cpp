#include "qa/model/flops.hpp"

namespace qa {

double forward_flops(const T5Config& c, int64_t batch, int64_t src_len, int64_t tgt_len) {
  const double d = static_cast<double>(c.d_model), inner = static_cast<double>(c.inner_dim());
  const double ff = static_cast<double>(c.d_ff) * (c.is_gated_act ? 3.0 : 2.0);  // wi_0, wi_1, wo (or wi, wo)
  const double S = static_cast<double>(src_len), T = static_cast<double>(tgt_len), B = static_cast<double>(batch);
  // Multiply-adds per sequence.
  const double enc = static_cast<double>(c.num_layers) * (S * (4 * d * inner + d * ff) + 2 * S * S * inner);
  const double dec = static_cast<double>(c.num_decoder_layers) *
                     (T * (4 * d * inner + 2 * d * inner + d * ff)  // self q,k,v,o; cross q,o; FFN
                      + S * 2 * d * inner                            // cross k,v from the encoder output
                      + 2 * T * T * inner + 2 * T * S * inner);      // self and cross scores and values
  const double head = T * d * static_cast<double>(c.vocab_size);
  return 2.0 * B * (enc + dec + head);
}

}  // namespace qa
