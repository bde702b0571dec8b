#include "qa/io/hf_model_dir.hpp"

#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "qa/io/safetensors.hpp"
#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"

namespace qa {
namespace {

using json = nlohmann::json;

std::string shape_text(const torch::IntArrayRef& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Names a Hugging Face checkpoint may hold that are aliases of shared.weight.
bool is_tied_alias(const std::string& name, const T5Config& c) {
  return name == "encoder.embed_tokens.weight" || name == "decoder.embed_tokens.weight" ||
         (c.tie_word_embeddings && name == "lm_head.weight");
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict(T5Model& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : model->named_parameters()) out.emplace_back(p.key(), p.value());
  return out;
}

void load_hf_weights(T5Model& model, const CheckpointFiles& files) {
  torch::NoGradGuard no_grad;
  const T5Config& c = model->config();
  auto params = model->named_parameters();
  std::map<std::string, std::string> loaded_from;  // parameter -> file
  for (const auto& file : files.files) {
    visit_safetensors(file, [&](const std::string& name, const torch::Tensor& t) {
      if (!files.index.empty()) {
        auto it = files.weight_map.find(name);
        if (it == files.weight_map.end()) throw_bad_file(file, "tensor '" + name + "' is not listed in " + files.index);
        if (it->second != file) throw_bad_file(file, "tensor '" + name + "': the index places it in " + it->second);
      }
      if (is_tied_alias(name, c) && !params.contains(name)) return;
      if (!params.contains(name)) throw_bad_file(file, "unexpected tensor '" + name + "' (not part of this T5 architecture)");
      if (!loaded_from.emplace(name, file).second) {
        throw_bad_file(file, "tensor '" + name + "' is also in " + loaded_from.at(name));
      }
      auto& p = params[name];
      if (t.sizes() != p.sizes()) {
        throw_bad_file(file, "tensor '" + name + "' has shape " + shape_text(t.sizes()) + ", the config needs " +
                                 shape_text(p.sizes()));
      }
      p.copy_(t);
    });
  }
  const std::string where = files.index.empty() ? files.files.front() : files.index;
  for (const auto& p : params) {
    if (!loaded_from.count(p.key())) throw_bad_file(where, "missing tensor '" + p.key() + "'");
  }
  for (const auto& [name, shard] : files.weight_map) {
    if (!loaded_from.count(name) && !is_tied_alias(name, c)) {
      throw_bad_file(files.index, "tensor '" + name + "' is listed but not in " + shard);
    }
  }
}

LoadedModel load_model_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!dir_exists(dir)) throw_bad_file(dir, "model folder not found");
  const std::string config_path = (fs::path(dir) / "config.json").string();
  const std::string spm_path = (fs::path(dir) / "spiece.model").string();
  if (!file_exists(config_path)) throw_bad_file(dir, "not a model folder: config.json is missing");
  const CheckpointFiles weights = locate_checkpoint_files(dir);
  if (!file_exists(spm_path)) throw_bad_file(dir, "spiece.model is missing");

  LoadedModel out{T5Config::from_hf_file(config_path), nullptr, Tokenizer::load(spm_path)};
  if (out.tokenizer.vocab_size() > out.config.vocab_size) {
    throw_bad_file(spm_path, "the tokenizer has " + std::to_string(out.tokenizer.vocab_size()) +
                                 " pieces but the model's vocab_size is " + std::to_string(out.config.vocab_size));
  }
  out.model = T5Model(out.config);
  load_hf_weights(out.model, weights);
  return out;
}

void save_model_dir(const std::string& dir, T5Model& model, const Tokenizer& tokenizer) {
  namespace fs = std::filesystem;
  const std::string staging = make_staging_dir(dir);
  try {
    const T5Config& c = model->config();
    auto path = [&](const char* name) { return (fs::path(staging) / name).string(); };
    save_safetensors(path("model.safetensors"), hf_state_dict(model));
    write_file_atomic(path("config.json"), c.to_hf_json().dump(2) + "\n");
    write_file_atomic(path("spiece.model"), tokenizer.model_bytes());
    // What transformers' T5Tokenizer needs to load this folder unchanged (no extra sentinel ids:
    // our vocabulary is exactly the SentencePiece model; legacy: plain SentencePiece segmentation,
    // which is what qa-train does, and it silences transformers' warning about the default).
    json tok = {{"tokenizer_class", "T5Tokenizer"}, {"eos_token", "</s>"}, {"pad_token", "<pad>"},
                {"unk_token", "<unk>"}, {"extra_ids", 0}, {"additional_special_tokens", json::array()},
                {"model_max_length", 512}, {"legacy", true}};
    write_file_atomic(path("tokenizer_config.json"), tok.dump(2) + "\n");
    json special = {{"eos_token", "</s>"}, {"pad_token", "<pad>"}, {"unk_token", "<unk>"}};
    write_file_atomic(path("special_tokens_map.json"), special.dump(2) + "\n");
    json gen = {{"decoder_start_token_id", c.decoder_start_token_id}, {"eos_token_id", c.eos_token_id},
                {"pad_token_id", c.pad_token_id}};
    write_file_atomic(path("generation_config.json"), gen.dump(2) + "\n");
    publish_dir(staging, dir);
  } catch (...) {
    remove_tree(staging);
    throw;
  }
}

}  // namespace qa
