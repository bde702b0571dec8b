#include "qa/io/hf_model_dir.hpp"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../support/reference.hpp"
#include "qa/io/safetensors.hpp"
#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"

namespace fs = std::filesystem;

namespace qa {
namespace {

fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("qa-hfdir-" + std::to_string(::getpid()) + "-" + name);
  qa::remove_tree(d);
  return d;
}

// A copy of the fixture folder whose weights are `tensors`.
fs::path fixture_with(const std::string& name, const std::map<std::string, torch::Tensor>& tensors) {
  auto d = fresh_dir(name);
  fs::create_directories(d);
  for (const char* f : {"config.json", "spiece.model"}) fs::copy_file(test::fixture_model_dir() + "/" + f, d / f);
  std::vector<std::pair<std::string, torch::Tensor>> list(tensors.begin(), tensors.end());
  save_safetensors((d / "model.safetensors").string(), list);
  return d;
}

std::string load_error(const fs::path& dir) {
  try {
    load_model_dir(dir.string());
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    return e.what();
  }
  ADD_FAILURE() << "loaded " << dir;
  return "";
}

}  // namespace

TEST(HfModelDir, SaveThenLoadIsBitwiseEqualAndHasTheHuggingFaceFiles) {
  auto a = load_model_dir(test::fixture_model_dir());
  auto dir = fresh_dir("roundtrip");
  save_model_dir(dir.string(), a.model, a.tokenizer);
  for (const char* f : {"config.json", "model.safetensors", "spiece.model", "tokenizer_config.json",
                        "special_tokens_map.json", "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  }
  auto b = load_model_dir(dir.string());
  auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  EXPECT_EQ(b.config.to_hf_json(), a.config.to_hf_json());
  // Saving again replaces the folder atomically and leaves no staging folders behind.
  save_model_dir(dir.string(), b.model, b.tokenizer);
  for (const auto& e : fs::directory_iterator(dir.parent_path())) {
    EXPECT_EQ(e.path().filename().string().find(".roundtrip.tmp"), std::string::npos) << e.path();
  }
  qa::remove_tree(dir);
}

// What qa-train exports matches what transformers wrote for the same model: the same tensor names,
// dtypes, shapes and bytes, and every config field transformers stored (its version aside).
TEST(HfModelDir, ExportMatchesWhatTransformersWrites) {
  for (const std::string name : {"hf-flan-tiny", "hf-t5-relu-tied", "hf-t5-gated-silu"}) {
    SCOPED_TRACE(name);
    const std::string fixture = test::fixture_dir(name);
    auto a = load_model_dir(fixture);
    auto dir = fresh_dir("export");
    save_model_dir(dir.string(), a.model, a.tokenizer);
    std::map<std::string, torch::Tensor> theirs, ours;
    visit_safetensors(fixture + "/model.safetensors",
                      [&](const std::string& n, const torch::Tensor& t) { theirs.emplace(n, t.clone()); });
    visit_safetensors((dir / "model.safetensors").string(),
                      [&](const std::string& n, const torch::Tensor& t) { ours.emplace(n, t.clone()); });
    ASSERT_EQ(ours.size(), theirs.size());  // tied: shared.weight only, no lm_head.weight
    for (const auto& [tensor, t] : theirs) {
      ASSERT_TRUE(ours.count(tensor)) << tensor;
      EXPECT_EQ(ours[tensor].scalar_type(), t.scalar_type()) << tensor;
      EXPECT_TRUE(torch::equal(ours[tensor], t)) << tensor;  // bitwise: import then export changes nothing
    }
    for (const char* file : {"config.json", "generation_config.json"}) {
      auto want = nlohmann::json::parse(std::ifstream(fixture + "/" + file));
      auto got = nlohmann::json::parse(std::ifstream(dir / file));
      for (const auto& [key, value] : want.items()) {
        if (key == "transformers_version" || key == "_from_model_config") continue;
        ASSERT_TRUE(got.contains(key)) << file << ": " << key;
        EXPECT_EQ(got[key], value) << file << ": " << key;
      }
    }
    auto b = load_model_dir(dir.string());  // import -> export -> import: bitwise equal parameters
    auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
    for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
    qa::remove_tree(dir);
  }
}

TEST(HfModelDir, ImportErrorsNameTheTensor) {
  auto good = load_safetensors(test::fixture_model_dir() + "/model.safetensors");
  auto missing = good;
  missing.erase("decoder.block.1.layer.2.DenseReluDense.wo.weight");
  auto d1 = fixture_with("missing", missing);
  EXPECT_NE(load_error(d1).find("missing tensor 'decoder.block.1.layer.2.DenseReluDense.wo.weight'"), std::string::npos);
  auto wrong = good;
  wrong["shared.weight"] = torch::zeros({200, 32});
  auto d2 = fixture_with("shape", wrong);
  auto m2 = load_error(d2);
  EXPECT_NE(m2.find("'shared.weight' has shape [200, 32], the config needs [200, 64]"), std::string::npos) << m2;
  auto extra = good;
  extra["encoder.block.9.layer.0.SelfAttention.q.weight"] = torch::zeros({64, 64});
  auto d3 = fixture_with("extra", extra);
  EXPECT_NE(load_error(d3).find("unexpected tensor 'encoder.block.9"), std::string::npos);
  auto aliased = good;  // tied aliases of shared.weight are accepted
  aliased["encoder.embed_tokens.weight"] = good.at("shared.weight");
  auto d4 = fixture_with("alias", aliased);
  EXPECT_NO_THROW(load_model_dir(d4.string()));
  for (const auto& d : {d1, d2, d3, d4}) qa::remove_tree(d);
}

// The fixture's tensors split over `shards` files with an index, as transformers' save_pretrained
// writes a sharded checkpoint; `dtype` converts them (BF16 / F16 checkpoints).
fs::path sharded_fixture(const std::string& name, int shards, torch::ScalarType dtype) {
  auto good = load_safetensors(test::fixture_model_dir() + "/model.safetensors");
  auto d = fresh_dir(name);
  fs::create_directories(d);
  for (const char* f : {"config.json", "spiece.model"}) fs::copy_file(test::fixture_model_dir() + "/" + f, d / f);
  std::vector<std::vector<std::pair<std::string, torch::Tensor>>> parts(static_cast<std::size_t>(shards));
  nlohmann::json map = nlohmann::json::object();
  int i = 0;
  for (const auto& [tensor, t] : good) {
    const int k = i++ % shards;
    char file[64];
    std::snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", k + 1, shards);
    parts[static_cast<std::size_t>(k)].emplace_back(tensor, t.to(dtype));
    map[tensor] = file;
  }
  for (int k = 0; k < shards; ++k) {
    char file[64];
    std::snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", k + 1, shards);
    save_safetensors((d / file).string(), parts[static_cast<std::size_t>(k)]);
  }
  std::ofstream(d / "model.safetensors.index.json") << nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", map}}.dump();
  return d;
}

TEST(HfModelDir, ShardedAndHalfPrecisionCheckpointsLoad) {
  auto reference = load_model_dir(test::fixture_model_dir());
  for (auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
    SCOPED_TRACE(c10::toString(dtype));
    auto d = sharded_fixture("sharded", 3, dtype);
    auto loaded = load_model_dir(d.string());
    auto want = reference.model->named_parameters();
    for (const auto& p : loaded.model->named_parameters()) {
      EXPECT_EQ(p.value().scalar_type(), torch::kFloat) << p.key();
      // Converted exactly once: the stored (rounded) values, widened to fp32.
      EXPECT_TRUE(torch::equal(p.value(), want[p.key()].to(dtype).to(torch::kFloat))) << p.key();
    }
    qa::remove_tree(d);
  }
}

TEST(HfModelDir, ShardedCheckpointErrorsNameTheFileAndTensor) {
  auto d = sharded_fixture("sharded-bad", 2, torch::kFloat);
  const auto index_path = d / "model.safetensors.index.json";
  auto index = nlohmann::json::parse(std::ifstream(index_path));
  auto original = index;
  // A tensor the index places in the other shard.
  auto& map = index["weight_map"];
  const std::string moved = "shared.weight";
  map[moved] = map[moved] == "model-00001-of-00002.safetensors" ? "model-00002-of-00002.safetensors"
                                                                  : "model-00001-of-00002.safetensors";
  std::ofstream(index_path) << index.dump();
  auto e1 = load_error(d);
  EXPECT_NE(e1.find("tensor 'shared.weight': the index places it in"), std::string::npos) << e1;
  // A tensor of a shard that the index does not list.
  index = original;
  index["weight_map"].erase(moved);
  std::ofstream(index_path) << index.dump();
  auto e2 = load_error(d);
  EXPECT_NE(e2.find("tensor 'shared.weight' is not listed in"), std::string::npos) << e2;
  // A listed tensor that its shard does not hold.
  index = original;
  index["weight_map"]["encoder.block.0.layer.0.SelfAttention.extra"] = "model-00001-of-00002.safetensors";
  std::ofstream(index_path) << index.dump();
  auto e3 = load_error(d);
  EXPECT_NE(e3.find("'encoder.block.0.layer.0.SelfAttention.extra' is listed but not in"), std::string::npos) << e3;
  qa::remove_tree(d);
}

TEST(HfModelDir, UnsupportedDtypeNamesTheTensor) {
  auto good = load_safetensors(test::fixture_model_dir() + "/model.safetensors");
  good["shared.weight"] = good["shared.weight"].to(torch::kInt);
  auto d = fixture_with("dtype", good);
  auto e = load_error(d);
  EXPECT_NE(e.find("tensor 'shared.weight': unsupported dtype I32"), std::string::npos) << e;
  qa::remove_tree(d);
}

// T5 checkpoints have more embedding rows than tokenizer pieces (32128 vs 32100): that loads.
TEST(HfModelDir, EmbeddingMayHaveMoreRowsThanTheTokenizer) {
  auto good = load_safetensors(test::fixture_model_dir() + "/model.safetensors");
  for (const char* name : {"shared.weight", "lm_head.weight"}) good[name] = torch::cat({good[name], torch::zeros({8, 64})});
  auto d = fixture_with("rows", good);
  auto config = nlohmann::json::parse(std::ifstream(d / "config.json"));
  config["vocab_size"] = 208;
  std::ofstream(d / "config.json") << config.dump();
  auto loaded = load_model_dir(d.string());
  EXPECT_EQ(loaded.config.vocab_size, 208);
  EXPECT_EQ(loaded.tokenizer.vocab_size(), 200);
  config["vocab_size"] = 100;  // fewer rows than pieces is an error
  std::ofstream(d / "config.json") << config.dump();
  EXPECT_NE(load_error(d).find("the tokenizer has 200 pieces but the model's vocab_size is 100"), std::string::npos);
  qa::remove_tree(d);
}

TEST(HfModelDir, MissingOrForeignFilesAreClearErrors) {
  EXPECT_NE(load_error("/nonexistent/model").find("model folder not found"), std::string::npos);
  auto d = fresh_dir("pickle");
  fs::create_directories(d);
  fs::copy_file(test::fixture_model_dir() + "/config.json", d / "config.json");
  std::ofstream(d / "pytorch_model.bin") << "pickle";
  EXPECT_NE(load_error(d).find("only model.safetensors"), std::string::npos);
  fs::remove(d / "pytorch_model.bin");
  fs::copy_file(test::fixture_model_dir() + "/model.safetensors", d / "model.safetensors");
  EXPECT_NE(load_error(d).find("spiece.model is missing"), std::string::npos);
  std::ofstream(d / "spiece.model") << "garbage";
  EXPECT_NE(load_error(d).find("spiece.model: not a valid SentencePiece model"), std::string::npos);
  qa::remove_tree(d);
}

}  // namespace qa
