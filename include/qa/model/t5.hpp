// The T5 encoder-decoder (T5 v1.1 / Flan-T5 and original T5), built from LibTorch primitives so that it
// computes what Hugging Face's T5ForConditionalGeneration computes. Module and parameter names are the
// Hugging Face state-dict names ("encoder.block.0.layer.0.SelfAttention.q.weight", ...).
//
// One class per Hugging Face module; every variant (gated or plain FFN, any activation, tied or
// untied head) is configuration of the same classes.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "qa/model/t5_config.hpp"

namespace qa {

// RMSNorm without mean subtraction or bias; statistics in fp32 whatever the input dtype.
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

// Whether the products of one input with several weights (self-attention's q, k, v; cross-attention's
// k, v; the gated feed-forward's wi_0, wi_1) run as one product with the weights stacked. Same values
// up to the products' summation order. kAuto stacks them on CUDA in training mode: there the input is
// cast to bf16 once instead of once per weight, and its gradient is one product instead of a sum of
// several, each cast back to fp32 (~15% of an encoder layer's element-wise traffic); elsewhere (the
// CPU; evaluation and generation, which stack nothing per token) stacking the weights at each call
// would cost more than it saves. Training mode, not grad mode: activation checkpointing runs a block
// without grad and recomputes it with grad, and both must compute the same way.
enum class StackedProjections { kAuto, kOn, kOff };
bool stacks_projections(StackedProjections s, const torch::Device& device, bool training);

// Which products the projections take when training on `device` (the bench JSON's cpu_gemm, the
// trainer's log): "onednn_bf16" (bf16, model/bf16_linear), "onednn" or "onednn_except_short_forward"
// (fp32, model/onednn_linear), or "blas" (LibTorch's, autocast's in bf16).
const char* projection_products(const torch::Device& device, bool bf16);

// Keys and values of one attention layer kept across decoding steps.
struct KVCache {
  torch::Tensor k, v;  // [B, H, L, d_kv]
};

// Multi-head attention without biases and without 1/sqrt(d) scaling (T5 folds it into the init).
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const T5Config& c, bool has_relative_bias, bool bidirectional);
  // x: [B, Q, D]. kv: [B, K, D] (x itself for self-attention), or undefined when `cache` already holds
  // the keys/values (cross-attention while decoding). bias: broadcastable to [B, H, Q, K], position
  // bias plus mask. With `cache` and `append_to_cache`, new keys/values are appended (self-attention
  // while decoding); with `cache` and !append_to_cache, keys/values are computed once and reused.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& kv, const torch::Tensor& bias,
                        KVCache* cache = nullptr, bool append_to_cache = false);
  // Position bias [1, H, Q, K] for queries at positions offset..offset+Q-1 (block 0 only).
  torch::Tensor position_bias(int64_t q_len, int64_t k_len, int64_t q_offset);
  bool bidirectional() const { return bidirectional_; }
  // Attention through at::scaled_dot_product_attention (position bias and mask as its additive
  // mask) instead of explicit products and softmax; see T5ModelImpl::use_sdpa.
  void set_use_sdpa(bool on) { use_sdpa_ = on; }
  void set_stacked_projections(StackedProjections s) { stacked_ = s; }
  // See T5ModelImpl::set_fused_cpu_attention.
  void set_fused_cpu_attention(bool on) { fused_cpu_ = on; }

  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  torch::nn::Embedding relative_attention_bias{nullptr};

 private:
  torch::Tensor split_heads(const torch::Tensor& x) const;  // [B, L, H*d] -> [B, H, L, d]
  int64_t n_heads_, d_kv_, num_buckets_, max_distance_;
  bool bidirectional_;
  double dropout_;
  bool use_sdpa_ = false;
  bool fused_cpu_ = true;
  StackedProjections stacked_ = StackedProjections::kAuto;
};
TORCH_MODULE(Attention);

class FeedForwardImpl : public torch::nn::Module {  // HF: DenseReluDense (T5DenseActDense / T5DenseGatedActDense)
 public:
  explicit FeedForwardImpl(const T5Config& c);
  torch::Tensor forward(const torch::Tensor& x);
  void set_stacked_projections(StackedProjections s) { stacked_ = s; }
  torch::nn::Linear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};

 private:
  torch::Tensor act(const torch::Tensor& x) const;
  StackedProjections stacked_ = StackedProjections::kAuto;
  std::string act_fn_;
  bool tanh_gelu_;  // act_fn_ names GELU's tanh approximation (gelu_new, gelu_pytorch_tanh)
  bool gated_;
  double dropout_;
};
TORCH_MODULE(FeedForward);

// x + dropout(SelfAttention(layer_norm(x)))
class SelfAttentionLayerImpl : public torch::nn::Module {
 public:
  SelfAttentionLayerImpl(const T5Config& c, bool has_relative_bias, bool bidirectional);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias, KVCache* cache = nullptr);
  Attention SelfAttention{nullptr};
  RMSNorm layer_norm{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(SelfAttentionLayer);

// x + dropout(EncDecAttention(layer_norm(x), encoder_states))
class CrossAttentionLayerImpl : public torch::nn::Module {
 public:
  explicit CrossAttentionLayerImpl(const T5Config& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& encoder_states, const torch::Tensor& bias,
                        KVCache* cache = nullptr);
  Attention EncDecAttention{nullptr};
  RMSNorm layer_norm{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(CrossAttentionLayer);

// x + dropout(DenseReluDense(layer_norm(x)))
class FeedForwardLayerImpl : public torch::nn::Module {
 public:
  explicit FeedForwardLayerImpl(const T5Config& c);
  torch::Tensor forward(const torch::Tensor& x);
  FeedForward DenseReluDense{nullptr};
  RMSNorm layer_norm{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(FeedForwardLayer);

// Per decoder block: self-attention keys/values (growing) and cross-attention keys/values (fixed).
struct BlockCache {
  KVCache self, cross;
};

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const T5Config& c, bool is_decoder, bool has_relative_bias);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& self_bias, const torch::Tensor& encoder_states,
                        const torch::Tensor& cross_bias, BlockCache* cache = nullptr);
  torch::nn::ModuleList layer{nullptr};  // HF: layer.0 self-attention, (layer.1 cross-attention), last FFN
  SelfAttentionLayer self_attention{nullptr};
  CrossAttentionLayer cross_attention{nullptr};
  FeedForwardLayer feed_forward{nullptr};
};
TORCH_MODULE(Block);

class StackImpl : public torch::nn::Module {  // HF: T5Stack (encoder or decoder)
 public:
  StackImpl(const T5Config& c, bool is_decoder);
  // embeds: [B, L, D] token embeddings. self_bias/cross_bias: position bias plus masks, computed by the caller.
  torch::Tensor forward(const torch::Tensor& embeds, const torch::Tensor& self_bias,
                        const torch::Tensor& encoder_states = {}, const torch::Tensor& cross_bias = {},
                        std::vector<BlockCache>* caches = nullptr);
  Attention first_self_attention() const { return blocks_.front()->self_attention->SelfAttention; }
  // See T5ModelImpl::set_activation_checkpointing.
  void set_activation_checkpointing(bool on) { checkpointing_ = on; }

  torch::nn::ModuleList block{nullptr};
  RMSNorm final_layer_norm{nullptr};

 private:
  std::vector<Block> blocks_;
  double dropout_;
  bool checkpointing_ = false;
};
TORCH_MODULE(Stack);

// State of an incremental (cached) decode: the encoder output, its mask, one cache per block.
struct DecoderState {
  torch::Tensor encoder_states;  // [B, S, D]
  torch::Tensor cross_bias;      // [B, 1, 1, S]
  std::vector<BlockCache> caches;
  int64_t position = 0;          // tokens already fed
  // Keeps only rows `index` (beam search reordering, dropping finished rows).
  void select(const torch::Tensor& index);
};

class T5ModelImpl : public torch::nn::Module {  // HF: T5ForConditionalGeneration
 public:
  explicit T5ModelImpl(const T5Config& c);

  // input_ids, attention_mask [B, S] (mask: 1 real, 0 padding) -> encoder states [B, S, D].
  torch::Tensor encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
  // Teacher-forced decoder: decoder_input_ids [B, T] -> logits [B, T, V].
  torch::Tensor decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& encoder_states,
                       const torch::Tensor& attention_mask);
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const torch::Tensor& decoder_input_ids);

  // Incremental decoding with a key/value cache: one token per row per call, logits [B, V].
  DecoderState start_decoding(const torch::Tensor& encoder_states, const torch::Tensor& attention_mask);
  torch::Tensor decode_step(const torch::Tensor& tokens, DecoderState& state);

  // Hugging Face's initialisation for training from scratch (a new untied lm_head: std d_model^-0.5;
  // the position bias as config().position_bias_init says).
  void init_weights(uint64_t seed);

  const T5Config& config() const { return config_; }

  // Every attention layer through at::scaled_dot_product_attention when `on` and this LibTorch has
  // it (>= 2.1; fused memory-efficient kernels on CUDA); returns whether it is now in use. Otherwise
  // explicit products and softmax: in fp32 on the CPU (as Hugging Face), in the products' dtype on CUDA.
  bool use_sdpa(bool on);

  // See StackedProjections; kAuto unless a test or benchmark says otherwise.
  void set_stacked_projections(StackedProjections s);

  // Explicit attention in fp32 on the CPU as one pass per matrix (model/fused_attention) where it
  // applies; off: separate products, bias addition and softmax. On unless a test or benchmark says
  // otherwise. Not used through at::scaled_dot_product_attention (use_sdpa).
  void set_fused_cpu_attention(bool on);

  // What computes attention's core in training on batches of `batch` sequences, in bf16 (autocast)
  // or fp32, on the model's device: "memory_efficient_kernel", "scaled_dot_product_attention",
  // "fused_cpu" (model/fused_attention) or "explicit" (separate products and softmax). For logs and
  // benchmark reports, asked the way the layers ask.
  std::string attention_path(int64_t batch, bool bf16) const;

  // Activation checkpointing (Hugging Face's gradient_checkpointing): while training with grad mode
  // on and no KV cache, each block keeps only its inputs and recomputes its activations in the
  // backward pass (model/activation_checkpoint). Same loss and gradients; generation and evaluation
  // are unaffected.
  void set_activation_checkpointing(bool on);

  // The input embedding's backward pass yields a sparse gradient (the looked-up rows) instead of a
  // dense [vocab, d_model] one, filled and added per lookup (64 MiB each for Flan-T5). Only for
  // parameters whose .grad is already a dense tensor that it is added into: train/optimizer sets this.
  void set_sparse_embedding_grad(bool on) { sparse_embedding_grad_ = on; }

  // The lookup as index_select, whose backward adds the rows in place (index_add_): no sort and no
  // wait for the device, which CUDA graphs need (the embedding's own CUDA backward sorts larger
  // batches with a step that waits; pytorch/pytorch#82886). Same values and gradient up to the order
  // of the additions. Takes precedence over the sparse gradient.
  void set_capturable_embedding(bool on) { capturable_embedding_ = on; }

  torch::nn::Embedding shared{nullptr};
  Stack encoder{nullptr}, decoder{nullptr};
  torch::nn::Linear lm_head{nullptr};  // absent when tie_word_embeddings

 private:
  torch::Tensor lm_logits(const torch::Tensor& decoder_states);
  torch::Tensor embed(const torch::Tensor& ids);
  void init_local_position_bias(AttentionImpl& a) const;
  // `bias` as every layer of a stack takes it; `batch` rows of `queries` queries each.
  torch::Tensor attention_bias(const torch::Tensor& bias, int64_t batch, int64_t queries) const;
  T5Config config_;
  bool sdpa_ = false;
  bool fused_cpu_ = true;
  bool sparse_embedding_grad_ = false;
  bool capturable_embedding_ = false;
};
TORCH_MODULE(T5Model);

// Whether attention on CUDA calls the memory-efficient kernel itself (compat::efficient_attention):
// this LibTorch has it and it has not refused a call in this process (after which attention goes
// through the dispatcher).
bool efficient_attention_usable();

// (1 - mask) * lowest float, shaped [B, 1, 1, S]: the additive form of a padding mask.
torch::Tensor additive_padding_mask(const torch::Tensor& attention_mask, torch::ScalarType dtype);

}  // namespace qa
