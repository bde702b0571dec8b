// Locating the weight files of a model folder: single file, sharded index, and every bad case.
#include "qa/io/hf_checkpoint_files.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"

namespace fs = std::filesystem;

namespace qa {
namespace {

struct CheckpointFilesTest : ::testing::Test {
  void SetUp() override {
    dir = fs::temp_directory_path() / ("qa-ckfiles-" + std::to_string(::getpid()));
    qa::remove_tree(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { qa::remove_tree(dir); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir / name) << text; }
  std::string error() {
    try {
      locate_checkpoint_files(dir.string());
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kBadInput);
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
  }
  fs::path dir;
};

}  // namespace

TEST_F(CheckpointFilesTest, SingleFileWinsOverAnIndex) {
  write("model.safetensors", "x");
  write("model.safetensors.index.json", "{}");
  auto f = locate_checkpoint_files(dir.string());
  ASSERT_EQ(f.files.size(), 1u);
  EXPECT_EQ(f.files[0], (dir / "model.safetensors").string());
  EXPECT_TRUE(f.index.empty());
}

TEST_F(CheckpointFilesTest, ShardedIndexListsEachShardOnceInOrder) {
  write("model-00001-of-00002.safetensors", "a");
  write("model-00002-of-00002.safetensors", "b");
  write("model.safetensors.index.json", R"({"metadata": {"total_size": 8}, "weight_map": {
      "a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors",
      "c.weight": "model-00001-of-00002.safetensors"}})");
  auto f = locate_checkpoint_files(dir.string());
  ASSERT_EQ(f.files.size(), 2u);
  EXPECT_EQ(f.files[0], (dir / "model-00001-of-00002.safetensors").string());
  EXPECT_EQ(f.files[1], (dir / "model-00002-of-00002.safetensors").string());
  EXPECT_EQ(f.weight_map.at("b.weight"), f.files[1]);
  EXPECT_EQ(f.index, (dir / "model.safetensors.index.json").string());
}

TEST_F(CheckpointFilesTest, BadIndexesAreClearErrors) {
  write("model.safetensors.index.json", "{not json");
  EXPECT_NE(error().find("model.safetensors.index.json: invalid JSON"), std::string::npos);
  write("model.safetensors.index.json", R"({"metadata": {}})");
  EXPECT_NE(error().find("\"weight_map\""), std::string::npos);
  write("model.safetensors.index.json", R"({"weight_map": {"a.weight": 3}})");
  EXPECT_NE(error().find("weight_map['a.weight']: expected a file name"), std::string::npos);
  write("model.safetensors.index.json", R"({"weight_map": {"a.weight": "../../etc/passwd"}})");
  EXPECT_NE(error().find("is not a file name in the model folder"), std::string::npos);
  write("model.safetensors.index.json", R"({"weight_map": {"a.weight": "model-00001-of-00002.safetensors"}})");
  EXPECT_NE(error().find("shard 'model-00001-of-00002.safetensors' (of tensor 'a.weight') is missing"), std::string::npos);
  write("model.safetensors.index.json", R"({"weight_map": {}})");
  EXPECT_NE(error().find("weight_map is empty"), std::string::npos);
}

TEST_F(CheckpointFilesTest, PickleOnlyOrNoWeightsAreClearErrors) {
  EXPECT_NE(error().find("no weights"), std::string::npos);
  write("pytorch_model.bin", "pickle");
  auto e = error();
  EXPECT_NE(e.find("has only pytorch_model.bin"), std::string::npos) << e;
  EXPECT_NE(e.find("only model.safetensors"), std::string::npos) << e;
}

}  // namespace qa
