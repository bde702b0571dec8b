// Checkpoint folders: the manifest catches every kind of damage; listing skips staging folders;
// pruning keeps the newest and the best.
#include "qa/train/checkpoint_store.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include "qa/util/fs.hpp"

namespace fs = std::filesystem;

namespace qa {
namespace {

struct CheckpointStore : ::testing::Test {
  void SetUp() override {
    out = fs::temp_directory_path() / ("qa-ckstore-" + std::to_string(::getpid()));
    qa::remove_tree(out);
  }
  void TearDown() override { qa::remove_tree(out); }
  std::string make(int64_t step, bool with_manifest = true) {
    const std::string dir = checkpoint_path(out.string(), step);
    fs::create_directories(dir);
    std::ofstream(fs::path(dir) / "model.safetensors") << "weights of step " << step;
    std::ofstream(fs::path(dir) / "trainer_state.json") << "{}";
    if (with_manifest) write_manifest(dir);
    return dir;
  }
  fs::path out;
};

}  // namespace

TEST_F(CheckpointStore, ManifestVerifiesAndCatchesDamage) {
  const std::string dir = make(10);
  EXPECT_EQ(verify_checkpoint(dir), "");
  const auto file = fs::path(dir) / "model.safetensors";
  std::ofstream(file, std::ios::app) << "x";  // longer
  EXPECT_NE(verify_checkpoint(dir).find("model.safetensors: 19 bytes, the manifest says 18"), std::string::npos)
      << verify_checkpoint(dir);
  std::ofstream(file) << "weights of step 99";  // same size, other bytes
  EXPECT_EQ(verify_checkpoint(dir), "model.safetensors: checksum mismatch");
  fs::remove(file);
  EXPECT_EQ(verify_checkpoint(dir), "model.safetensors: missing");
  std::ofstream(fs::path(dir) / kManifestFile) << "{\"files\": ";  // torn
  EXPECT_NE(verify_checkpoint(dir).find("unreadable manifest.json"), std::string::npos);
  EXPECT_EQ(verify_checkpoint(make(11, /*with_manifest=*/false)), "no manifest.json (incomplete)");
}

TEST_F(CheckpointStore, ListsPublishedFoldersNewestFirst) {
  make(5);
  make(40);
  make(12);
  fs::create_directories(fs::path(checkpoints_root(out.string())) / ".step-50.tmp-123-0");  // staging
  fs::create_directories(fs::path(checkpoints_root(out.string())) / "step-x");
  std::ofstream(fs::path(checkpoints_root(out.string())) / "step-7");  // a file, not a folder
  auto all = list_checkpoints(out.string());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].step, 40);
  EXPECT_EQ(all[1].step, 12);
  EXPECT_EQ(all[2].step, 5);
  EXPECT_TRUE(list_checkpoints((out / "nothing-here").string()).empty());
}

TEST_F(CheckpointStore, PruneKeepsTheNewestAndTheBestAndRemovesStagingFolders) {
  for (int64_t s : {4, 8, 12, 16, 20}) make(s);
  const auto staging = fs::path(checkpoints_root(out.string())) / ".step-24.tmp-99-1";
  fs::create_directories(staging);
  std::ofstream(fs::path(checkpoints_root(out.string())) / "notes.txt") << "mine";
  prune_checkpoints(out.string(), 2, /*keep_step=*/8);
  std::vector<int64_t> left;
  for (const auto& c : list_checkpoints(out.string())) left.push_back(c.step);
  EXPECT_EQ(left, (std::vector<int64_t>{20, 16, 8}));
  EXPECT_FALSE(fs::exists(staging));
  EXPECT_TRUE(fs::exists(fs::path(checkpoints_root(out.string())) / "notes.txt"));  // not ours: untouched
}

}  // namespace qa
