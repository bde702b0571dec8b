#include "qa/model/t5_config.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"
#include "qa/util/json_text.hpp"

namespace qa {
namespace {
using json = nlohmann::json;
}

bool is_supported_activation(const std::string& name) {
  return name == "relu" || name == "gelu" || name == "gelu_new" || name == "gelu_pytorch_tanh" ||
         name == "silu" || name == "swish";
}

void T5Config::derive_activation(const std::string& source) {
  // configuration_t5.py: act_info = feed_forward_proj.split("-"); dense_act_fn = act_info[-1];
  // is_gated_act = act_info[0] == "gated"; more than "gated-ACT" is an error; "gated-gelu" -> gelu_new.
  const std::string& f = feed_forward_proj;
  auto dash = f.find('-');
  std::string act = f;
  bool gated = false;
  if (dash != std::string::npos) {
    if (f.substr(0, dash) != "gated" || f.find('-', dash + 1) != std::string::npos) {
      throw_config(source, "model.feed_forward_proj",
                   "'" + f + "' is not a valid activation: use ACT or gated-ACT (e.g. relu, gated-gelu)");
    }
    gated = true;
    act = f.substr(dash + 1);
  }
  if (f == "gated-gelu") act = "gelu_new";
  if (!is_supported_activation(act)) {
    throw_config(source, "model.feed_forward_proj",
                 "unsupported activation '" + act + "' (supported: relu, gelu, gelu_new, silu)");
  }
  dense_act_fn = act;
  is_gated_act = gated;
}

void T5Config::validate(const std::string& source, const std::string& prefix) const {
  auto positive = [&](const char* key, int64_t v) {
    if (v < 1) throw_config(source, prefix + key, "must be >= 1, got " + std::to_string(v));
  };
  positive("d_model", d_model);
  positive("d_kv", d_kv);
  positive("d_ff", d_ff);
  positive("num_layers", num_layers);
  positive("num_decoder_layers", num_decoder_layers);
  positive("num_heads", num_heads);
  if (relative_attention_num_buckets < 2) {
    throw_config(source, prefix + "relative_attention_num_buckets", "must be >= 2");
  }
  if (relative_attention_max_distance < 1) {
    throw_config(source, prefix + "relative_attention_max_distance", "must be >= 1");
  }
  if (!(dropout_rate >= 0 && dropout_rate < 1)) throw_config(source, prefix + "dropout_rate", "must be in [0, 1)");
  if (!(layer_norm_epsilon > 0)) throw_config(source, prefix + "layer_norm_epsilon", "must be > 0");
  if (!is_supported_activation(dense_act_fn)) {
    throw_config(source, prefix + "dense_act_fn", "unsupported activation '" + dense_act_fn + "'");
  }
  if (vocab_size > 0) {
    for (auto [key, id] : {std::pair<const char*, int64_t>{"pad_token_id", pad_token_id},
                           {"eos_token_id", eos_token_id},
                           {"decoder_start_token_id", decoder_start_token_id}}) {
      if (id < 0 || id >= vocab_size) {
        throw_config(source, prefix + key, std::to_string(id) + " is outside the vocabulary (vocab_size " +
                                               std::to_string(vocab_size) + ")");
      }
    }
  }
}

json T5Config::to_hf_json() const {
  return json{
      {"architectures", {"T5ForConditionalGeneration"}},
      {"model_type", "t5"},
      {"is_encoder_decoder", true},
      {"vocab_size", vocab_size},
      {"d_model", d_model},
      {"d_kv", d_kv},
      {"d_ff", d_ff},
      {"num_layers", num_layers},
      {"num_decoder_layers", num_decoder_layers},
      {"num_heads", num_heads},
      {"relative_attention_num_buckets", relative_attention_num_buckets},
      {"relative_attention_max_distance", relative_attention_max_distance},
      {"dropout_rate", dropout_rate},
      {"classifier_dropout", 0.0},
      {"layer_norm_epsilon", layer_norm_epsilon},
      {"initializer_factor", initializer_factor},
      {"feed_forward_proj", feed_forward_proj},
      {"dense_act_fn", dense_act_fn},
      {"is_gated_act", is_gated_act},
      {"tie_word_embeddings", tie_word_embeddings},
      {"pad_token_id", pad_token_id},
      {"eos_token_id", eos_token_id},
      {"decoder_start_token_id", decoder_start_token_id},
      {"use_cache", true},
      {"torch_dtype", "float32"},
  };
}

T5Config T5Config::from_hf_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw_bad_file(source, "expected a JSON object (a Hugging Face T5 config.json)");
  T5Config c;
  auto bad = [&](const std::string& key, const std::string& what) { throw_bad_file(source, "key '" + key + "': " + what); };
  auto get_int = [&](const char* key, int64_t& dst, bool required) {
    if (!j.contains(key)) {
      if (required) bad(key, "is required");
      return;
    }
    const auto& v = j.at(key);
    if (!v.is_number_integer()) bad(key, "expected an integer, got " + json_value_text(v));
    dst = v.get<int64_t>();
  };
  auto get_num = [&](const char* key, double& dst) {
    if (!j.contains(key)) return;
    const auto& v = j.at(key);
    if (!v.is_number()) bad(key, "expected a number, got " + json_value_text(v));
    dst = v.get<double>();
  };
  auto get_bool = [&](const char* key, bool& dst) {
    if (!j.contains(key)) return;
    const auto& v = j.at(key);
    if (!v.is_boolean()) bad(key, "expected true or false, got " + json_value_text(v));
    dst = v.get<bool>();
  };
  auto get_str = [&](const char* key, std::string& dst) {
    if (!j.contains(key)) return;
    const auto& v = j.at(key);
    if (!v.is_string()) bad(key, "expected a string, got " + json_value_text(v));
    dst = v.get<std::string>();
  };
  if (j.contains("model_type") && j.at("model_type") != "t5") {
    bad("model_type", "expected \"t5\", got " + json_value_text(j.at("model_type")));
  }
  // T5Config's defaults where a key is absent (transformers configuration_t5.py).
  c.vocab_size = 32128;
  c.d_model = 512;
  c.d_kv = 64;
  c.d_ff = 2048;
  c.num_layers = 6;
  c.num_heads = 8;
  c.feed_forward_proj = "relu";
  c.tie_word_embeddings = true;
  c.dropout_rate = 0.1;
  get_int("vocab_size", c.vocab_size, true);
  get_int("d_model", c.d_model, false);
  get_int("d_kv", c.d_kv, false);
  get_int("d_ff", c.d_ff, false);
  get_int("num_layers", c.num_layers, false);
  c.num_decoder_layers = c.num_layers;  // HF: num_decoder_layers defaults to num_layers
  if (j.contains("num_decoder_layers") && !j.at("num_decoder_layers").is_null()) {
    get_int("num_decoder_layers", c.num_decoder_layers, false);
  }
  get_int("num_heads", c.num_heads, false);
  get_int("relative_attention_num_buckets", c.relative_attention_num_buckets, false);
  get_int("relative_attention_max_distance", c.relative_attention_max_distance, false);
  get_num("dropout_rate", c.dropout_rate);
  get_num("layer_norm_epsilon", c.layer_norm_epsilon);
  get_num("initializer_factor", c.initializer_factor);
  get_str("feed_forward_proj", c.feed_forward_proj);
  get_bool("tie_word_embeddings", c.tie_word_embeddings);
  get_int("pad_token_id", c.pad_token_id, false);
  get_int("eos_token_id", c.eos_token_id, false);
  get_int("decoder_start_token_id", c.decoder_start_token_id, false);
  try {
    c.derive_activation(source);
  } catch (const Error& e) {
    throw Error(e.what(), ExitCode::kBadInput);
  }
  // Stored values win over the derived ones, as in transformers.
  get_str("dense_act_fn", c.dense_act_fn);
  get_bool("is_gated_act", c.is_gated_act);
  static const char* known[] = {"architectures", "model_type", "is_encoder_decoder", "vocab_size", "d_model", "d_kv",
                                "d_ff", "num_layers", "num_decoder_layers", "num_heads",
                                "relative_attention_num_buckets", "relative_attention_max_distance",
                                "dropout_rate", "layer_norm_epsilon", "initializer_factor", "feed_forward_proj",
                                "dense_act_fn", "is_gated_act", "tie_word_embeddings", "pad_token_id",
                                "eos_token_id", "decoder_start_token_id"};
  for (const auto& [key, value] : j.items()) {
    bool is_known = false;
    for (const char* k : known) is_known = is_known || key == k;
    if (!is_known) spdlog::debug("{}: ignoring key '{}'", source, key);
  }
  try {
    c.validate(source, "");
  } catch (const Error& e) {
    throw Error(e.what(), ExitCode::kBadInput);
  }
  return c;
}

T5Config T5Config::from_hf_file(const std::string& path) {
  std::string text = read_file(path, "model config");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for numbers like 1e400
    throw_bad_file(path, std::string("invalid JSON: ") + e.what());
  }
  return from_hf_json(j, path);
}

}  // namespace qa
