// The benchmark's FLOP formula equals a count made from the model's own weights: every weight matrix
// does one multiply-add per element per token it sees (encoder weights and cross-attention k/v: source
// tokens; other decoder weights and lm_head: target tokens), plus the attention products.
#include "qa/cli/bench_command.hpp"

#include <gtest/gtest.h>

#include "qa/model/t5.hpp"

namespace qa {

TEST(Bench, FlopFormulaMatchesACountFromTheWeights) {
  for (const std::string shape : {"demo", "flan-t5-small"}) {
    T5Config c;
    if (shape == "demo") {
      c.vocab_size = 2000, c.d_model = 128, c.d_ff = 256, c.num_layers = 2, c.num_decoder_layers = 1, c.num_heads = 4, c.d_kv = 32;
    } else {
      c.vocab_size = 32128, c.d_model = 512, c.d_ff = 1024, c.num_layers = 8, c.num_decoder_layers = 8, c.num_heads = 6, c.d_kv = 64;
    }
    c.feed_forward_proj = "gated-gelu";
    c.derive_activation("test");
    T5Model m(c);
    const double B = 3, S = 40, T = 7;
    double macs = 0;
    for (const auto& p : m->named_parameters()) {
      const std::string& n = p.key();
      if (p.value().dim() != 2 || n == "shared.weight" || n.find("relative_attention_bias") != std::string::npos) continue;
      const bool source_side = n.rfind("encoder.", 0) == 0 || n.find("EncDecAttention.k.") != std::string::npos ||
                               n.find("EncDecAttention.v.") != std::string::npos;
      macs += static_cast<double>(p.value().numel()) * (source_side ? S : T);
    }
    const double inner = static_cast<double>(c.inner_dim());
    macs += c.num_layers * 2 * S * S * inner;                 // encoder scores and values
    macs += c.num_decoder_layers * (2 * T * T * inner + 2 * T * S * inner);  // decoder self and cross
    EXPECT_NEAR(training_step_flops(shape, 3, 40, 7), 3 * 2 * B * macs, 1e-6 * 6 * B * macs) << shape;
  }
}

}  // namespace qa
