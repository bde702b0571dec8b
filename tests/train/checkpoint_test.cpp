// A checkpoint restores weights, optimizer moments and random generator state bitwise, refuses a
// different run, and a damaged one is rejected before anything is loaded.
#include "qa/train/checkpoint.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "../support/reference.hpp"
#include "../support/tiny_model.hpp"
#include "qa/train/checkpoint_store.hpp"
#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"

namespace fs = std::filesystem;

namespace qa {
namespace {

void train_a_little(T5Model& m, Optimizer& opt, int steps) {
  for (int i = 0; i < steps; ++i) {
    auto ids = torch::randint(3, 200, {2, 6}, torch::kLong);
    auto dec = torch::randint(3, 200, {2, 3}, torch::kLong);
    auto logits = m->forward(ids, torch::ones_like(ids), dec);
    torch::nn::functional::cross_entropy(logits.reshape({-1, 200}), dec.reshape({-1})).backward();
    opt.clip_grad_norm(1.0);
    opt.step(1e-2);
    opt.zero_grad();
  }
}

struct CheckpointTest : ::testing::Test {
  void SetUp() override {
    out = fs::temp_directory_path() / ("qa-ckpt-" + std::to_string(::getpid()));
    qa::remove_tree(out);
    train.weight_decay = 0.1;
  }
  void TearDown() override { qa::remove_tree(out); }
  fs::path out;
  TrainSection train;
  RunIdentity identity = {{"train.seed", 1}, {"train.batch_size", 8}};
};

}  // namespace

TEST_F(CheckpointTest, RestoresWeightsMomentsAndRandomStateBitwise) {
  auto tokenizer = Tokenizer::load(test::fixture_model_dir() + "/spiece.model");
  torch::manual_seed(3);
  T5Model a(test::tiny_t5_config(200));
  a->init_weights(3);
  Optimizer opt_a(a, train);
  train_a_little(a, opt_a, 3);
  TrainerState state;
  state.step = 3;
  state.epoch = 1;
  state.position = 5;
  const std::string dir = save_checkpoint(out.string(), a, opt_a, tokenizer, state, identity, {{"x", 1}});
  EXPECT_EQ(dir, checkpoint_path(out.string(), 3));
  EXPECT_EQ(verify_checkpoint(dir), "");
  const auto next_draw = torch::rand({4});  // what the generator gives right after the save

  T5Model b(test::tiny_t5_config(200));
  b->init_weights(99);
  Optimizer opt_b(b, train);
  TrainerState loaded = load_checkpoint(dir, b, opt_b, identity);
  EXPECT_EQ(loaded.to_json(), state.to_json());
  EXPECT_TRUE(torch::equal(torch::rand({4}), next_draw));
  auto pb = b->named_parameters();
  for (const auto& p : a->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  auto sa = opt_a.state(), sb = opt_b.state();
  for (std::size_t i = 0; i < sa.size(); ++i) EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second)) << sa[i].first;
  // And they keep training identically.
  torch::manual_seed(5);
  train_a_little(a, opt_a, 2);
  torch::manual_seed(5);
  train_a_little(b, opt_b, 2);
  for (const auto& p : a->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
}

TEST_F(CheckpointTest, ADifferentRunOrADamagedCheckpointIsRefused) {
  auto tokenizer = Tokenizer::load(test::fixture_model_dir() + "/spiece.model");
  T5Model a(test::tiny_t5_config(200));
  a->init_weights(1);
  Optimizer opt_a(a, train);
  TrainerState state;
  state.step = 7;
  const std::string dir = save_checkpoint(out.string(), a, opt_a, tokenizer, state, identity, {});

  T5Model b(test::tiny_t5_config(200));
  Optimizer opt_b(b, train);
  RunIdentity other = identity;
  other["train.batch_size"] = 16;
  try {
    load_checkpoint(dir, b, opt_b, other);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("was saved with train.batch_size = 8, this run has 16"), std::string::npos) << e.what();
  }
  T5Model wide(test::tiny_t5_config(200, 3));
  Optimizer opt_wide(wide, train);
  try {
    load_checkpoint(dir, wide, opt_wide, identity);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another model architecture (num_heads 2 vs 3)"), std::string::npos) << e.what();
  }
  // One flipped byte in the optimizer file: rejected by the manifest, nothing loaded.
  {
    std::fstream f(fs::path(dir) / "optimizer.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
  }
  try {
    load_checkpoint(dir, b, opt_b, identity);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("optimizer.safetensors: checksum mismatch"), std::string::npos) << e.what();
  }
  EXPECT_EQ(find_resumable_checkpoint(out.string()), "");  // the only checkpoint is damaged
  state.step = 5;  // an older, intact one: resume falls back to it
  const std::string older = save_checkpoint(out.string(), a, opt_a, tokenizer, state, identity, {});
  EXPECT_EQ(find_resumable_checkpoint(out.string()), older);
}

}  // namespace qa
