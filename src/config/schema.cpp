#include "qa/config/schema.hpp"

#include "qa/util/strings.hpp"

namespace qa {
namespace {

using json = nlohmann::json;
constexpr double kInf = std::numeric_limits<double>::infinity();

// One accessor lambda per key gives both the reader and the writer of that field.
template <class T, class Ref>
KeySpec entry(std::string key, KeyKind kind, Ref ref, std::string doc) {
  KeySpec s;
  s.key = std::move(key);
  s.kind = kind;
  s.doc = std::move(doc);
  s.get = [ref](const Config& c) { return json(ref(const_cast<Config&>(c))); };
  s.set = [ref](Config& c, const json& v) { ref(c) = v.get<T>(); };
  return s;
}

template <class Ref>
KeySpec int_key(std::string key, Ref ref, double min, std::string doc) {
  KeySpec s = entry<int64_t>(std::move(key), KeyKind::kInt, ref, std::move(doc));
  s.min = min;
  return s;
}

template <class Ref>
KeySpec float_key(std::string key, Ref ref, double min, double max, bool min_excl, bool max_excl, std::string doc) {
  KeySpec s = entry<double>(std::move(key), KeyKind::kFloat, ref, std::move(doc));
  s.min = min;
  s.max = max;
  s.min_exclusive = min_excl;
  s.max_exclusive = max_excl;
  return s;
}

template <class Ref>
KeySpec enum_key(std::string key, Ref ref, std::vector<std::string> choices, std::string doc) {
  KeySpec s = entry<std::string>(std::move(key), KeyKind::kEnum, ref, std::move(doc));
  s.choices = std::move(choices);
  return s;
}

template <class Ref>
KeySpec bool_key(std::string key, Ref ref, std::string doc) {
  return entry<bool>(std::move(key), KeyKind::kBool, ref, std::move(doc));
}

template <class Ref>
KeySpec string_key(std::string key, Ref ref, std::string doc) {
  return entry<std::string>(std::move(key), KeyKind::kString, ref, std::move(doc));
}

template <class Ref>
KeySpec path_key(std::string key, Ref ref, std::string doc) {
  return entry<std::string>(std::move(key), KeyKind::kPath, ref, std::move(doc));
}

#define QA_REF(member) [](Config& c) -> auto& { return c.member; }

std::vector<KeySpec> build_schema() {
  return {
      // ---- model: Hugging Face T5Config names --------------------------------------------------
      int_key("model.vocab_size", QA_REF(model.t5.vocab_size), 0,
              "Embedding rows; 0 = the tokenizer's size (must be >= the tokenizer's size otherwise)"),
      int_key("model.d_model", QA_REF(model.t5.d_model), 1, "Hidden size"),
      int_key("model.d_kv", QA_REF(model.t5.d_kv), 1, "Size of each attention head (inner width = num_heads * d_kv)"),
      int_key("model.d_ff", QA_REF(model.t5.d_ff), 1, "Feed-forward inner size"),
      int_key("model.num_layers", QA_REF(model.t5.num_layers), 1, "Encoder blocks"),
      int_key("model.num_decoder_layers", QA_REF(model.t5.num_decoder_layers), 1, "Decoder blocks"),
      int_key("model.num_heads", QA_REF(model.t5.num_heads), 1, "Attention heads"),
      int_key("model.relative_attention_num_buckets", QA_REF(model.t5.relative_attention_num_buckets), 2,
              "Relative position buckets"),
      int_key("model.relative_attention_max_distance", QA_REF(model.t5.relative_attention_max_distance), 1,
              "Distance beyond which relative positions share the last bucket"),
      float_key("model.dropout_rate", QA_REF(model.t5.dropout_rate), 0, 1, false, true, "Dropout probability"),
      float_key("model.layer_norm_epsilon", QA_REF(model.t5.layer_norm_epsilon), 0, kInf, true, false,
                "RMSNorm epsilon"),
      float_key("model.initializer_factor", QA_REF(model.t5.initializer_factor), 0, kInf, true, false,
                "Scale of Hugging Face's initialisation (from-scratch training)"),
      enum_key("model.position_bias_init", QA_REF(model.t5.position_bias_init), {"hf", "local"},
               "Relative position bias at the start of training from scratch: hf (Hugging Face's small random "
               "values) or local (each head's bias falls linearly with distance, with ALiBi's slopes)"),
      float_key("model.qk_mimetic", QA_REF(model.t5.qk_mimetic), 0, 1, false, false,
                "Training from scratch: share of each attention key projection that starts as a copy of its query "
                "projection, so that identical tokens attend to each other from the start (0 = Hugging Face's init)"),
      string_key("model.feed_forward_proj", QA_REF(model.t5.feed_forward_proj),
                 "FFN: ACT or gated-ACT, ACT in relu, gelu, gelu_new, silu (gated-gelu = gated gelu_new)"),
      bool_key("model.tie_word_embeddings", QA_REF(model.t5.tie_word_embeddings),
               "Share input embedding and lm_head (output scaled by d_model^-0.5)"),
      int_key("model.pad_token_id", QA_REF(model.t5.pad_token_id), 0, "Padding id"),
      int_key("model.eos_token_id", QA_REF(model.t5.eos_token_id), 0, "End-of-sequence id"),
      int_key("model.decoder_start_token_id", QA_REF(model.t5.decoder_start_token_id), 0,
              "First decoder input id"),
      path_key("model.init_from", QA_REF(model.init_from),
               "Hugging Face model folder to fine-tune (config.json, model.safetensors, spiece.model); its "
               "architecture and tokenizer replace the model.* and tokenizer.* keys"),
      // ---- tokenizer --------------------------------------------------------------------------------
      path_key("tokenizer.model", QA_REF(tokenizer.model),
               "SentencePiece model to use; empty = train a unigram model on data.train"),
      int_key("tokenizer.vocab_size", QA_REF(tokenizer.vocab_size), 8,
              "Upper bound on pieces when training a tokenizer"),
      float_key("tokenizer.character_coverage", QA_REF(tokenizer.character_coverage), 0, 1, true, false,
                "Share of characters the trained tokenizer covers"),
      int_key("tokenizer.max_training_examples", QA_REF(tokenizer.max_training_examples), 0,
              "Training examples (a seeded sample) the tokenizer is trained on; 0 = all"),
      // ---- data -------------------------------------------------------------------------------------
      path_key("data.train", QA_REF(data.train), "Training JSONL file"),
      path_key("data.validation", QA_REF(data.validation), "Validation JSONL file (empty: no evaluation)"),
      string_key("data.source_template", QA_REF(data.source_template),
                 "Encoder input; {question} and {context} are replaced"),
      int_key("data.max_source_length", QA_REF(data.max_source_length), 2, "Source tokens kept, EOS included"),
      int_key("data.max_target_length", QA_REF(data.max_target_length), 2, "Target tokens kept, EOS included"),
      bool_key("data.group_by_length", QA_REF(data.group_by_length),
               "Batch examples of similar length together (sorted within groups of 50 batches, batches shuffled)"),
      // ---- train ------------------------------------------------------------------------------------
      int_key("train.seed", QA_REF(train.seed), 0, "Seed for initialisation, shuffling and dropout"),
      int_key("train.batch_size", QA_REF(train.batch_size), 1, "Examples per micro-batch"),
      int_key("train.grad_accum_steps", QA_REF(train.grad_accum_steps), 1, "Micro-batches per optimizer step"),
      int_key("train.epochs", QA_REF(train.epochs), 1, "Passes over the training data (unless max_steps > 0)"),
      int_key("train.max_steps", QA_REF(train.max_steps), 0, "Optimizer steps; 0 = from epochs"),
      float_key("train.max_time_minutes", QA_REF(train.max_time_minutes), 0, kInf, false, false,
                "Wall-time budget; when reached, evaluate, save and stop (0 = none)"),
      float_key("train.learning_rate", QA_REF(train.learning_rate), 0, kInf, true, false, "Peak learning rate"),
      float_key("train.weight_decay", QA_REF(train.weight_decay), 0, kInf, false, false,
                "AdamW weight decay (not applied to norm weights)"),
      float_key("train.adam_beta1", QA_REF(train.adam_beta1), 0, 1, false, true, "AdamW beta1"),
      float_key("train.adam_beta2", QA_REF(train.adam_beta2), 0, 1, false, true, "AdamW beta2"),
      float_key("train.adam_epsilon", QA_REF(train.adam_epsilon), 0, kInf, true, false, "AdamW epsilon"),
      enum_key("train.lr_schedule", QA_REF(train.lr_schedule), {"linear", "cosine", "constant"},
               "Decay after warmup"),
      enum_key("train.lr_scaling", QA_REF(train.lr_scaling), {"none", "param_rms"},
               "param_rms: each tensor's learning rate is multiplied by its RMS at the start (Adafactor's "
               "scale_parameter), so that std-1 embeddings learn as fast, relatively, as the projections; the "
               "relative position bias, added to attention logits as is, keeps the full rate"),
      int_key("train.warmup_steps", QA_REF(train.warmup_steps), 0, "Linear warmup steps"),
      float_key("train.min_lr_ratio", QA_REF(train.min_lr_ratio), 0, 1, false, false,
                "Learning-rate floor of the decay, as a fraction of the peak"),
      float_key("train.max_grad_norm", QA_REF(train.max_grad_norm), 0, kInf, false, false,
                "Clip the global gradient norm (0 = off)"),
      float_key("train.answer_pointer_weight", QA_REF(train.answer_pointer_weight), 0, kInf, false, false,
                "Training only: weight of an auxiliary loss that makes the encoder's last states point at the "
                "source tokens that also occur in the answer (extractive QA), added to the answer's "
                "cross-entropy; helps a model trained from scratch find the answer sooner (0 = off)"),
      enum_key("train.precision", QA_REF(train.precision), {"fp32", "bf16"},
               "bf16: matrix products in bfloat16 (autocast), weights, norms, softmax and loss in fp32"),
      int_key("train.log_every_steps", QA_REF(train.log_every_steps), 1, "Steps between log lines"),
      int_key("train.max_bad_steps", QA_REF(train.max_bad_steps), 1,
              "Consecutive steps with a non-finite loss or gradient (each skipped) before the run stops"),
      bool_key("train.activation_checkpointing", QA_REF(train.activation_checkpointing),
               "Keep only each transformer block's inputs and recompute its activations in the backward pass "
               "(Hugging Face's gradient_checkpointing): much less activation memory for one more forward pass of the "
               "blocks"),
      bool_key("train.cuda_graphs", QA_REF(train.cuda_graphs),
               "CUDA, one process: record each micro-batch shape's forward and backward pass once as a CUDA graph and "
               "replay it (one launch instead of thousands); sequences are padded up to multiples of 64 source / 16 "
               "target tokens, so that few shapes occur. Ignored, with a warning, on the CPU and with several processes"),
      // ---- eval -------------------------------------------------------------------------------------
      int_key("eval.every_steps", QA_REF(eval.every_steps), 0, "Steps between evaluations (0 = only at the end)"),
      int_key("eval.batch_size", QA_REF(eval.batch_size), 1, "Examples per evaluation batch"),
      int_key("eval.max_new_tokens", QA_REF(eval.max_new_tokens), 1, "Longest generated answer, EOS included"),
      int_key("eval.num_beams", QA_REF(eval.num_beams), 1, "Beams for answer generation (1 = greedy)"),
      enum_key("eval.metric", QA_REF(eval.metric), {"exact_match", "f1", "loss"},
               "Metric that picks the best model (higher is better, loss: lower)"),
      int_key("eval.max_examples", QA_REF(eval.max_examples), 0,
              "Evaluate on the first N validation examples during training (0 = all)"),
      // ---- output -----------------------------------------------------------------------------------
      path_key("output.dir", QA_REF(output.dir), "Output folder (model/, logs/ and checkpoints/ are written here)"),
      int_key("output.save_every_steps", QA_REF(output.save_every_steps), 0,
              "Steps between checkpoints in <output>/checkpoints/step-N (0 = only at the end and on a stop signal)"),
      int_key("output.keep_last", QA_REF(output.keep_last), 1, "Checkpoints kept (the newest ones, plus the best)"),
      [] {
        auto k = path_key("output.resume", QA_REF(output.resume),
                          "Resume from a checkpoint folder, or auto: the newest valid one under <output>/checkpoints "
                          "(none: start fresh); empty = start fresh");
        k.keyword = "auto";
        return k;
      }(),
      bool_key("output.overwrite", QA_REF(output.overwrite),
               "A fresh run (no output.resume) deletes checkpoints an earlier run left in output.dir; false: that is an error"),
      // ---- runtime ----------------------------------------------------------------------------------
      enum_key("runtime.device", QA_REF(runtime.device), {"auto", "cpu", "cuda"},
               "Where to train; auto = cuda when available"),
      int_key("runtime.threads", QA_REF(runtime.threads), 0, "Intra-op CPU threads (0 = all cores)"),
      enum_key("runtime.log_level", QA_REF(runtime.log_level), {"debug", "info", "warn", "error"},
               "Console and train.log verbosity"),
      // ---- distributed ------------------------------------------------------------------------------
      string_key("distributed.master_addr", QA_REF(distributed.master_addr),
                 "Rendezvous host (rank 0) when the MASTER_ADDR environment variable is not set"),
      int_key("distributed.master_port", QA_REF(distributed.master_port), 1,
              "Rendezvous port when MASTER_PORT is not set"),
      float_key("distributed.timeout_seconds", QA_REF(distributed.timeout_seconds), 0, kInf, true, false,
                "Longest wait for the other processes (joining, every collective): a rank that died stops the rest"),
  };
}

#undef QA_REF

}  // namespace

const std::vector<KeySpec>& config_schema() {
  static const std::vector<KeySpec> schema = build_schema();
  return schema;
}

const KeySpec* find_key(const std::string& key) {
  for (const auto& s : config_schema()) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

std::string describe_kind(const KeySpec& spec) {
  auto bound = [&](double v) { return format_number(v); };
  std::string range;
  if (spec.min > -kInf) range += std::string(spec.min_exclusive ? " > " : " >= ") + bound(spec.min);
  if (spec.max < kInf) range += std::string(range.empty() ? " " : " and ") + (spec.max_exclusive ? "< " : "<= ") + bound(spec.max);
  switch (spec.kind) {
    case KeyKind::kInt: return "integer" + range;
    case KeyKind::kFloat: return "number" + range;
    case KeyKind::kBool: return "true or false";
    case KeyKind::kString: return "string";
    case KeyKind::kPath: return "path";
    case KeyKind::kEnum: return "one of: " + join(spec.choices, ", ");
  }
  return "";
}

}  // namespace qa
