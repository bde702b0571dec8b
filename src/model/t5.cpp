#include "qa/model/t5.hpp"

#include <atomic>
#include <cmath>
#include <limits>

#include <spdlog/spdlog.h>

#include "qa/model/activation_checkpoint.hpp"
#include "qa/model/batched_matmul.hpp"
#include "qa/model/bf16_linear.hpp"
#include "qa/model/bias_softmax.hpp"
#include "qa/model/fused_attention.hpp"
#include "qa/model/fused_gated_gelu.hpp"
#include "qa/model/fused_rms_norm.hpp"
#include "qa/model/onednn_linear.hpp"
#include "qa/model/relative_position.hpp"
#include "qa/model/stacked_gated_gelu.hpp"
#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

torch::nn::Linear linear(int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); }

torch::Tensor to_float(const torch::Tensor& x) { return x.scalar_type() == torch::kFloat ? x : x.to(torch::kFloat); }

// Under bf16 autocast, matrix products return bfloat16. On the CPU, LibTorch's element-wise work
// (activations, masks) is both more accurate and much faster in fp32, so products are widened right
// away; the next product narrows its input again (the fused gated GELU reads and writes bf16 itself,
// computing in fp32, and skips both casts). On a GPU that would be one more cast kernel per product and twice
// the memory traffic of every element-wise pass, so products stay bf16 there, as in Hugging Face
// (the residual stream stays fp32 either way: fp32 + bf16 is fp32). A no-op in fp32 runs.
torch::Tensor widen(const torch::Tensor& x) { return x.is_cuda() ? x : to_float(x); }

// x W^T, in fp32 where `widened` (see widen), else in the product's type (bf16 under autocast). On the
// CPU through oneDNN where that is faster: fp32 training (model/onednn_linear); bf16 autocast
// (model/bf16_linear, which returns the wanted type straight from its fp32 sums).
torch::Tensor product(const torch::Tensor& x, const torch::Tensor& w, bool widened = false) {
  if (bf16_linear_applies(x, w)) return bf16_linear(x, w, widened ? torch::kFloat : torch::kBFloat16);
  const auto y = onednn_linear_applies(x, w) ? onednn_linear(x, w) : torch::linear(x, w);
  return widened ? widen(y) : y;
}

// x W^T (+ b) through at::linear, not the module's forward: LibTorch 1.13's torch::nn::Linear computes
// x.matmul(W.t()), and autocast, seeing a transposed view, skips its cache of the weights' bf16 copies.
// Each call then cast its weight again: under bf16, every generated token re-cast the whole model (the
// lm_head alone is 16M values; ~40% of flan-t5-small's greedy generation). at::linear is autocast's own
// op, so each weight is cast once per autocast scope.
torch::Tensor project(const torch::nn::Linear& layer, const torch::Tensor& x, bool widened = false) {
  if (!layer->bias.defined()) return product(x, layer->weight, widened);
  const auto y = torch::linear(x, layer->weight, layer->bias);
  return widened ? widen(y) : y;
}

using Layers = std::initializer_list<const torch::nn::Linear*>;

bool stackable(Layers layers) {
  for (const auto* l : layers) {
    if ((*l)->bias.defined()) return false;  // T5 has no biases
  }
  return true;
}

// x times the layers' weights stacked into one [sum of outputs, in] matrix: [..., sum of outputs].
// Under autocast the stack is made of the weights' cached low-precision copies (a third of the bytes
// of stacking fp32 and casting the stack).
torch::Tensor stacked_product(Layers layers, const torch::Tensor& x) {
  const auto device = x.device().type();
  const auto autocast = compat::autocast_state(device);
  std::vector<torch::Tensor> weights;
  for (const auto* l : layers) {
    const auto& w = (*l)->weight;
    weights.push_back(autocast.enabled ? at::autocast::cached_cast(autocast.dtype, w, device) : w);
  }
  return product(x, torch::cat(weights));
}

// x times each layer's weight; where `stacked`, as one product (stacked_product) split into views;
// through bf16_linear, as one call that rounds x once and sums dx once.
std::vector<torch::Tensor> project_all(Layers layers, const torch::Tensor& x, bool stacked) {
  if (stacked && stackable(layers)) {
    std::vector<int64_t> rows;
    for (const auto* l : layers) rows.push_back((*l)->weight.size(0));
    return stacked_product(layers, x).split_with_sizes(rows, -1);
  }
  if (stackable(layers)) {
    std::vector<torch::Tensor> weights;
    for (const auto* l : layers) {
      if (!bf16_linear_applies(x, (*l)->weight)) break;
      weights.push_back((*l)->weight);
    }
    if (weights.size() == layers.size()) return bf16_linears(x, weights, torch::kBFloat16);
  }
  std::vector<torch::Tensor> out;
  for (const auto* l : layers) out.push_back(project(*l, x));
  return out;
}

torch::Tensor maybe_dropout(const torch::Tensor& x, double p, bool training) {
  return p > 0 && training ? torch::dropout(x, p, true) : x;
}

constexpr float kLowest = std::numeric_limits<float>::lowest();

// Once the memory-efficient kernel has refused a call (an unsupported GPU or head size), the process
// stops asking it and says so once; attention then goes through the dispatcher.
std::atomic<bool> efficient_attention_refused{false};
void disable_efficient_attention(const char* why) {
  if (!efficient_attention_refused.exchange(true)) {
    spdlog::warn("the memory-efficient attention kernel refused a call ({}); attention now goes through "
                 "at::scaled_dot_product_attention, much slower where the position bias needs a gradient", why);
  }
}

// Attention's products of [B, H, ., .] stacks; on the CPU in fp32, a whole matrix per thread, the
// result laid out like out_layout where given (see batched_matmul.hpp).
torch::Tensor stack_product(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out_layout = {}) {
  return batched_matmul_applies(a, b) ? batched_matmul(a, b, out_layout) : torch::matmul(a, b);
}

// [1, 1, T, T] with the lowest float above the diagonal: position t sees positions <= t.
torch::Tensor additive_causal_mask(int64_t t, const torch::Device& device) {
  return torch::full({t, t}, kLowest, torch::TensorOptions().dtype(torch::kFloat).device(device)).triu(1).view({1, 1, t, t});
}

}  // namespace

bool stacks_projections(StackedProjections s, const torch::Device& device, bool training) {
  return s == StackedProjections::kOn || (s == StackedProjections::kAuto && device.is_cuda() && training);
}

const char* projection_products(const torch::Device& device, bool bf16) {
  if (bf16) return bf16_linear_in_training(device) ? "onednn_bf16" : "blas";
  if (!onednn_linear_in_training(device, bf16)) return "blas";
  return onednn_linear_forward() ? "onednn" : "onednn_except_short_forward";
}

bool efficient_attention_usable() { return compat::kHasEfficientAttention && !efficient_attention_refused.load(); }

torch::Tensor additive_padding_mask(const torch::Tensor& attention_mask, torch::ScalarType dtype) {
  auto keep = attention_mask.to(dtype);
  return ((1.0 - keep) * kLowest).unsqueeze(1).unsqueeze(1);
}

// ---- RMSNorm -----------------------------------------------------------------------------------

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  if (fused_rms_norm_applies(x, weight)) return fused_rms_norm(x, weight, eps_);
  if (compat::kHasRmsNorm && x.is_cuda() && x.scalar_type() == torch::kFloat) return compat::rms_norm(x, weight, eps_);
  auto variance = x.to(torch::kFloat).pow(2).mean(-1, /*keepdim=*/true);
  return weight * (x * torch::rsqrt(variance + eps_));
}

// ---- attention -----------------------------------------------------------------------------------

AttentionImpl::AttentionImpl(const T5Config& c, bool has_relative_bias, bool bidirectional)
    : n_heads_(c.num_heads),
      d_kv_(c.d_kv),
      num_buckets_(c.relative_attention_num_buckets),
      max_distance_(c.relative_attention_max_distance),
      bidirectional_(bidirectional),
      dropout_(c.dropout_rate) {
  const int64_t inner = c.inner_dim();
  q = register_module("q", linear(c.d_model, inner));
  k = register_module("k", linear(c.d_model, inner));
  v = register_module("v", linear(c.d_model, inner));
  o = register_module("o", linear(inner, c.d_model));
  if (has_relative_bias) {
    relative_attention_bias = register_module("relative_attention_bias", torch::nn::Embedding(num_buckets_, n_heads_));
  }
}

torch::Tensor AttentionImpl::split_heads(const torch::Tensor& x) const {
  return x.view({x.size(0), x.size(1), n_heads_, d_kv_}).transpose(1, 2);
}

torch::Tensor AttentionImpl::position_bias(int64_t q_len, int64_t k_len, int64_t q_offset) {
  auto buckets = relative_position_buckets(q_len, k_len, q_offset, bidirectional_, num_buckets_, max_distance_,
                                           relative_attention_bias->weight.device());
  auto values = relative_attention_bias->forward(buckets);  // [Q, K, H]
  // Contiguous (a small copy): the permuted layout would otherwise carry into the [B, H, S, S] sums.
  return values.permute({2, 0, 1}).unsqueeze(0).contiguous();
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& kv, const torch::Tensor& bias,
                                     KVCache* cache, bool append_to_cache) {
  const int64_t batch = x.size(0), q_len = x.size(1);
  const bool stacked = stacks_projections(stacked_, x.device(), is_training());
  torch::Tensor queries, keys, values;
  if (cache && !append_to_cache) {
    queries = split_heads(project(q, x));
    if (!cache->k.defined()) {  // cross-attention: project the encoder states once per sequence
      // Contiguous [B, H, S, d_kv], once: every decoding step reads them, and torch::matmul (bf16, CUDA)
      // would otherwise copy the heads' strided views into stacks at each step.
      const auto kv_proj = project_all({&k, &v}, kv, stacked);
      cache->k = split_heads(kv_proj[0]).contiguous();
      cache->v = split_heads(kv_proj[1]).contiguous();
    }
    keys = cache->k;
    values = cache->v;
  } else {
    if (kv.is_same(x)) {  // self-attention
      const auto qkv = project_all({&q, &k, &v}, x, stacked);
      queries = split_heads(qkv[0]), keys = split_heads(qkv[1]), values = split_heads(qkv[2]);
    } else {
      queries = split_heads(project(q, x));
      const auto kv_proj = project_all({&k, &v}, kv, stacked);
      keys = split_heads(kv_proj[0]), values = split_heads(kv_proj[1]);
    }
    if (cache) {
      if (cache->k.defined()) {
        keys = torch::cat({cache->k, keys}, 2);
        values = torch::cat({cache->v, values}, 2);
      }
      cache->k = keys;
      cache->v = values;
    }
  }
  // No 1/sqrt(d_kv) scaling: T5 folds it into the initialisation of q.
  if (use_sdpa_) {  // fused kernel (LibTorch >= 2.1): the bias becomes its additive mask, scale 1
    const auto dt = queries.scalar_type();
    const auto mask = bias.defined() ? bias.to(dt) : bias;
    const auto k_dt = keys.to(dt), v_dt = values.to(dt);
    const double p = is_training() ? dropout_ : 0.0;
    torch::Tensor out;
    if (queries.is_cuda() && efficient_attention_usable()) {
      try {  // see compat::efficient_attention for why not the dispatcher
        out = compat::efficient_attention(queries, k_dt, v_dt, mask, p, /*scale=*/1.0);
      } catch (const c10::OutOfMemoryError&) {
        throw;  // not a refusal: the dispatcher would need the memory too
      } catch (const c10::Error& e) {
        disable_efficient_attention(e.what_without_backtrace());
      }
    }
    if (!out.defined()) out = compat::scaled_dot_product_attention(queries, k_dt, v_dt, mask, p, /*scale=*/1.0);
    return project(o, out.transpose(1, 2).reshape({batch, q_len, n_heads_ * d_kv_}), /*widened=*/true);
  }
  if (fused_cpu_ && fused_attention_applies(queries, keys, values, bias)) {
    const auto out = fused_attention(queries, keys, values, bias, is_training() ? dropout_ : 0.0);
    return project(o, out.transpose(1, 2).reshape({batch, q_len, n_heads_ * d_kv_}), /*widened=*/true);
  }
  // On the CPU, scores, bias and softmax in fp32 as in Hugging Face (softmax(scores.float())): under
  // bf16 the small score differences that content-based attention starts from, and their gradients,
  // would otherwise be rounded to 8 bits. The next product narrows the weights to bf16 again. On CUDA
  // they stay in the products' type, as the fused kernels keep them (bias in bf16, softmax summing in
  // fp32): fp32 [B, H, Q, K] passes would double the traffic of what is there a memory-bound step.
  const auto raw_scores = stack_product(queries, keys.transpose(2, 3));
  torch::Tensor weights;
  if (!(is_training() && dropout_ > 0) && bias_softmax_applies(raw_scores, bias)) {
    weights = bias_softmax(raw_scores, bias);  // the same, one pass per row (bf16 on the CPU)
  } else {
    auto scores = widen(raw_scores);
    if (bias.defined()) scores = scores + bias;
    // at::_softmax, not softmax: CUDA autocast runs softmax in fp32, casting [B, H, Q, K] both ways.
    weights = scores.is_cuda() ? at::_softmax(scores, -1, /*half_to_float=*/false) : torch::softmax(scores, -1);
    weights = maybe_dropout(weights, dropout_, is_training());
  }
  // [B, H, Q, d_kv], laid out as [B, Q, H, d_kv] where batched_matmul runs: the reshape below is then a view
  auto out = stack_product(weights, values, queries);
  return project(o, out.transpose(1, 2).reshape({batch, q_len, n_heads_ * d_kv_}), /*widened=*/true);
}

// ---- feed-forward --------------------------------------------------------------------------------

FeedForwardImpl::FeedForwardImpl(const T5Config& c)
    : act_fn_(c.dense_act_fn),
      tanh_gelu_(act_fn_ == "gelu_new" || act_fn_ == "gelu_pytorch_tanh"),
      gated_(c.is_gated_act),
      dropout_(c.dropout_rate) {
  if (gated_) {
    wi_0 = register_module("wi_0", linear(c.d_model, c.d_ff));
    wi_1 = register_module("wi_1", linear(c.d_model, c.d_ff));
  } else {
    wi = register_module("wi", linear(c.d_model, c.d_ff));
  }
  wo = register_module("wo", linear(c.d_ff, c.d_model));
}

torch::Tensor FeedForwardImpl::act(const torch::Tensor& x) const {
  if (act_fn_ == "relu") return torch::relu(x);
  if (act_fn_ == "gelu") return torch::gelu(x);
  if (tanh_gelu_) return torch::gelu(x, "tanh");
  return torch::silu(x);  // silu / swish (validated in T5Config)
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  torch::Tensor h;
  if (gated_) {
    const bool stacked = stacks_projections(stacked_, x.device(), is_training()) && stackable({&wi_0, &wi_1});
    if (stacked && (tanh_gelu_ || act_fn_ == "gelu")) {  // its backward fills the stacked gradient in place
      h = stacked_gated_gelu(stacked_product({&wi_0, &wi_1}, x), tanh_gelu_ ? "tanh" : "none");
    } else {
      const auto ab = project_all({&wi_0, &wi_1}, x, stacked);
      const auto &a = ab[0], &b = ab[1];
      // On the CPU Flan-T5's gated-gelu is one pass, in the products' type (bf16 under autocast: wo takes it as is).
      h = tanh_gelu_ && fused_gated_gelu_applies(a, b) ? fused_gated_gelu(a, b) : act(widen(a)) * widen(b);
    }
  } else {
    h = act(project(wi, x, /*widened=*/true));
  }
  return project(wo, maybe_dropout(h, dropout_, is_training()), /*widened=*/true);
}

// ---- sub-layers --------------------------------------------------------------------------------

SelfAttentionLayerImpl::SelfAttentionLayerImpl(const T5Config& c, bool has_relative_bias, bool bidirectional)
    : dropout_(c.dropout_rate) {
  SelfAttention = register_module("SelfAttention", Attention(c, has_relative_bias, bidirectional));
  layer_norm = register_module("layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
}

torch::Tensor SelfAttentionLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& bias, KVCache* cache) {
  auto h = layer_norm(x);
  return x + maybe_dropout(SelfAttention->forward(h, h, bias, cache, /*append_to_cache=*/true), dropout_, is_training());
}

CrossAttentionLayerImpl::CrossAttentionLayerImpl(const T5Config& c) : dropout_(c.dropout_rate) {
  EncDecAttention = register_module("EncDecAttention", Attention(c, false, false));
  layer_norm = register_module("layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
}

torch::Tensor CrossAttentionLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& encoder_states,
                                               const torch::Tensor& bias, KVCache* cache) {
  auto h = layer_norm(x);
  return x + maybe_dropout(EncDecAttention->forward(h, encoder_states, bias, cache, /*append_to_cache=*/false), dropout_,
                     is_training());
}

FeedForwardLayerImpl::FeedForwardLayerImpl(const T5Config& c) : dropout_(c.dropout_rate) {
  DenseReluDense = register_module("DenseReluDense", FeedForward(c));
  layer_norm = register_module("layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
}

torch::Tensor FeedForwardLayerImpl::forward(const torch::Tensor& x) {
  return x + maybe_dropout(DenseReluDense(layer_norm(x)), dropout_, is_training());
}

// ---- blocks and stacks ---------------------------------------------------------------------------

BlockImpl::BlockImpl(const T5Config& c, bool is_decoder, bool has_relative_bias) {
  layer = register_module("layer", torch::nn::ModuleList());
  self_attention = SelfAttentionLayer(c, has_relative_bias, /*bidirectional=*/!is_decoder);
  layer->push_back(self_attention);
  if (is_decoder) {
    cross_attention = CrossAttentionLayer(c);
    layer->push_back(cross_attention);
  }
  feed_forward = FeedForwardLayer(c);
  layer->push_back(feed_forward);
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& self_bias,
                                 const torch::Tensor& encoder_states, const torch::Tensor& cross_bias,
                                 BlockCache* cache) {
  auto h = self_attention(x, self_bias, cache ? &cache->self : nullptr);
  if (cross_attention) h = cross_attention(h, encoder_states, cross_bias, cache ? &cache->cross : nullptr);
  return feed_forward(h);
}

StackImpl::StackImpl(const T5Config& c, bool is_decoder) : dropout_(c.dropout_rate) {
  block = register_module("block", torch::nn::ModuleList());
  const int64_t n = is_decoder ? c.num_decoder_layers : c.num_layers;
  for (int64_t i = 0; i < n; ++i) {
    blocks_.push_back(Block(c, is_decoder, /*has_relative_bias=*/i == 0));  // block 0 owns the position bias
    block->push_back(blocks_.back());
  }
  final_layer_norm = register_module("final_layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
}

torch::Tensor StackImpl::forward(const torch::Tensor& embeds, const torch::Tensor& self_bias,
                                 const torch::Tensor& encoder_states, const torch::Tensor& cross_bias,
                                 std::vector<BlockCache>* caches) {
  if (caches && caches->size() != blocks_.size()) caches->resize(blocks_.size());
  auto h = maybe_dropout(embeds, dropout_, is_training());
  const bool checkpointed = checkpointing_ && is_training() && torch::GradMode::is_enabled() && !caches;
  for (std::size_t i = 0; i < blocks_.size(); ++i) {
    if (checkpointed) {
      // The position bias is an input, not a capture, so that its gradient leaves the recompute.
      const std::shared_ptr<BlockImpl> b = blocks_[i].ptr();
      h = checkpoint([b](const std::vector<torch::Tensor>& in) { return b->forward(in[0], in[1], in[2], in[3]); },
                     {h, self_bias, encoder_states, cross_bias});
    } else {
      h = blocks_[i]->forward(h, self_bias, encoder_states, cross_bias, caches ? &(*caches)[i] : nullptr);
    }
  }
  return maybe_dropout(final_layer_norm(h), dropout_, is_training());
}

// ---- the model -------------------------------------------------------------------------------------

void DecoderState::select(const torch::Tensor& index) {
  encoder_states = encoder_states.index_select(0, index);
  cross_bias = cross_bias.index_select(0, index);
  for (auto& c : caches) {
    for (KVCache* kv : {&c.self, &c.cross}) {
      if (kv->k.defined()) {
        kv->k = kv->k.index_select(0, index);
        kv->v = kv->v.index_select(0, index);
      }
    }
  }
}

T5ModelImpl::T5ModelImpl(const T5Config& c) : config_(c) {
  shared = register_module("shared", torch::nn::Embedding(c.vocab_size, c.d_model));
  encoder = register_module("encoder", Stack(c, /*is_decoder=*/false));
  decoder = register_module("decoder", Stack(c, /*is_decoder=*/true));
  if (!c.tie_word_embeddings) lm_head = register_module("lm_head", linear(c.d_model, c.vocab_size));
}

torch::Tensor T5ModelImpl::encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  const int64_t s = input_ids.size(1);
  auto bias = encoder->first_self_attention()->position_bias(s, s, 0) +
              additive_padding_mask(attention_mask, torch::kFloat);  // [B, H, S, S], shared by all blocks
  return encoder(embed(input_ids), attention_bias(bias, input_ids.size(0), s));
}

torch::Tensor T5ModelImpl::lm_logits(const torch::Tensor& decoder_states) {
  // Widened: the loss and generation's choices read the logits in fp32.
  if (lm_head) return project(lm_head, decoder_states, /*widened=*/true);
  // Tied embeddings: Mesh TensorFlow rescales the output before the shared projection.
  return product(decoder_states * std::pow(static_cast<double>(config_.d_model), -0.5), shared->weight, /*widened=*/true);
}

torch::Tensor T5ModelImpl::decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& encoder_states,
                                  const torch::Tensor& attention_mask) {
  const int64_t t = decoder_input_ids.size(1);
  auto self_bias = decoder->first_self_attention()->position_bias(t, t, 0) +
                   additive_causal_mask(t, decoder_input_ids.device());
  auto cross_bias = additive_padding_mask(attention_mask, torch::kFloat);
  const int64_t batch = decoder_input_ids.size(0);
  return lm_logits(decoder(embed(decoder_input_ids), attention_bias(self_bias, batch, t), encoder_states,
                           attention_bias(cross_bias, batch, t)));
}

torch::Tensor T5ModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                   const torch::Tensor& decoder_input_ids) {
  return decode(decoder_input_ids, encode(input_ids, attention_mask), attention_mask);
}

DecoderState T5ModelImpl::start_decoding(const torch::Tensor& encoder_states, const torch::Tensor& attention_mask) {
  DecoderState state;
  state.encoder_states = encoder_states;
  state.cross_bias = attention_bias(additive_padding_mask(attention_mask, torch::kFloat), attention_mask.size(0), 1);
  state.caches.resize(decoder->block->size());
  return state;
}

torch::Tensor T5ModelImpl::decode_step(const torch::Tensor& tokens, DecoderState& state) {
  const int64_t t = state.position;
  // One new query at position t over keys 0..t: no causal mask needed.
  auto self_bias = decoder->first_self_attention()->position_bias(1, t + 1, t);
  auto h = decoder(embed(tokens.view({-1, 1})), attention_bias(self_bias, tokens.numel(), 1), state.encoder_states,
                   state.cross_bias, &state.caches);
  ++state.position;
  return lm_logits(h).squeeze(1);
}

bool T5ModelImpl::use_sdpa(bool on) {
  const bool active = on && compat::kHasSdpa;
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto* a = dynamic_cast<AttentionImpl*>(m.get())) a->set_use_sdpa(active);
  }
  sdpa_ = active;
  return active;
}

std::string T5ModelImpl::attention_path(int64_t batch, bool bf16) const {
  const auto device = shared->weight.device();
  if (sdpa_) return device.is_cuda() && efficient_attention_usable() ? "memory_efficient_kernel" : "scaled_dot_product_attention";
  // One-token operands of the batch and heads, in the dtype autocast would give them.
  const auto one_token = torch::empty({batch, config_.num_heads, 1, config_.d_kv},
                                      torch::TensorOptions().dtype(bf16 ? torch::kBFloat16 : torch::kFloat).device(device));
  return fused_cpu_ && fused_attention_applies(one_token, one_token, one_token, torch::Tensor()) ? "fused_cpu" : "explicit";
}

// The fused kernels take the additive mask in the dtype of the queries (bf16 under autocast), and the
// memory-efficient one on CUDA in its own layout (compat::efficient_attention_bias: materialised,
// rows padded to 16). The bias is the same tensor for every layer of a stack ([B, H, S, S] for the
// encoder: 400 MB in fp32 for flan-t5-base at batch 32 x 512), so it is cast and laid out once here
// instead of once per layer, and its gradients from the layers add up in that dtype (the kernels
// return them in it anyway).
torch::Tensor T5ModelImpl::attention_bias(const torch::Tensor& bias, int64_t batch, int64_t queries) const {
  if (!sdpa_ && !bias.is_cuda()) return bias;  // explicit products on the CPU add the fp32 bias to fp32 scores
  const auto autocast = compat::autocast_state(bias.device().type());
  const torch::Tensor b = autocast.enabled ? bias.to(autocast.dtype) : bias;
  if (!sdpa_ || !bias.is_cuda() || !efficient_attention_usable()) return b;
  return compat::efficient_attention_bias(b, batch, config_.num_heads, queries, b.size(-1));
}

void T5ModelImpl::set_fused_cpu_attention(bool on) {
  fused_cpu_ = on;
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto* a = dynamic_cast<AttentionImpl*>(m.get())) a->set_fused_cpu_attention(on);
  }
}

void T5ModelImpl::set_stacked_projections(StackedProjections s) {
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto* a = dynamic_cast<AttentionImpl*>(m.get())) a->set_stacked_projections(s);
    if (auto* f = dynamic_cast<FeedForwardImpl*>(m.get())) f->set_stacked_projections(s);
  }
}

torch::Tensor T5ModelImpl::embed(const torch::Tensor& ids) {
  if (capturable_embedding_) {
    auto sizes = ids.sizes().vec();
    sizes.push_back(shared->weight.size(1));
    return shared->weight.index_select(0, ids.reshape({-1})).view(sizes);
  }
  return torch::embedding(shared->weight, ids, /*padding_idx=*/-1, /*scale_grad_by_freq=*/false, sparse_embedding_grad_);
}

void T5ModelImpl::set_activation_checkpointing(bool on) {
  encoder->set_activation_checkpointing(on);
  decoder->set_activation_checkpointing(on);
}

// Bias[bucket, h] = -slope_h * (smallest distance in the bucket) with ALiBi's slopes
// slope_h = 2^(-8 (h+1) / H): head 0 sees little beyond its neighbours, the last heads almost
// everything. Both directions alike.
void T5ModelImpl::init_local_position_bias(AttentionImpl& a) const {
  const int64_t n = config_.relative_attention_max_distance, buckets = config_.relative_attention_num_buckets;
  const bool bidirectional = a.bidirectional();
  auto rel = torch::arange(-n, n + 1, torch::kLong);
  auto ids = relative_position_bucket(rel, bidirectional, buckets, n);
  std::vector<double> nearest(static_cast<std::size_t>(buckets), static_cast<double>(n));
  for (int64_t i = 0; i < rel.size(0); ++i) {
    const auto b = static_cast<std::size_t>(ids[i].item<int64_t>());
    nearest[b] = std::min(nearest[b], static_cast<double>(std::abs(rel[i].item<int64_t>())));
  }
  auto w = a.relative_attention_bias->weight;  // [buckets, heads]
  for (int64_t b = 0; b < buckets; ++b) {
    for (int64_t h = 0; h < w.size(1); ++h) {
      const double slope = std::pow(2.0, -8.0 * static_cast<double>(h + 1) / static_cast<double>(w.size(1)));
      w[b][h] = -slope * nearest[static_cast<std::size_t>(b)];
    }
  }
}

void T5ModelImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  const double f = config_.initializer_factor;
  const double d_model = static_cast<double>(config_.d_model);
  shared->weight.normal_(0.0, f * 1.0);
  // HF draws an untied head with std 1.0: the initial loss is then ~100 and the gradients fill with
  // subnormal floats that slow matrix products ~3x. d_model^-0.5 keeps initial logits O(1).
  if (lm_head) lm_head->weight.normal_(0.0, f * std::pow(d_model, -0.5));
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto* a = dynamic_cast<AttentionImpl*>(m.get())) {
      const double inner = static_cast<double>(config_.inner_dim());
      a->q->weight.normal_(0.0, f * std::pow(d_model * static_cast<double>(config_.d_kv), -0.5));
      a->k->weight.normal_(0.0, f * std::pow(d_model, -0.5));
      if (const double m = config_.qk_mimetic; m > 0) {  // see T5Config::qk_mimetic
        auto mixed = (1.0 - m) * a->k->weight / a->k->weight.std() + m * a->q->weight / a->q->weight.std();
        a->k->weight.copy_(mixed / mixed.std() * (f * std::pow(d_model, -0.5)));
      }
      a->v->weight.normal_(0.0, f * std::pow(d_model, -0.5));
      a->o->weight.normal_(0.0, f * std::pow(inner, -0.5));
      if (a->relative_attention_bias) {
        a->relative_attention_bias->weight.normal_(0.0, f * std::pow(d_model, -0.5));
        if (config_.position_bias_init == "local") init_local_position_bias(*a);
      }
    } else if (auto* ff = dynamic_cast<FeedForwardImpl*>(m.get())) {
      for (auto* wi : {&ff->wi, &ff->wi_0, &ff->wi_1}) {
        if (*wi) (*wi)->weight.normal_(0.0, f * std::pow(d_model, -0.5));
      }
      ff->wo->weight.normal_(0.0, f * std::pow(static_cast<double>(config_.d_ff), -0.5));
    } else if (auto* norm = dynamic_cast<RMSNormImpl*>(m.get())) {
      norm->weight.fill_(f * 1.0);
    }
  }
}

}  // namespace qa
