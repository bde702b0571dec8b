#include "qa/util/fs.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "qa/util/error.hpp"

namespace fs = std::filesystem;

namespace qa {
namespace {

fs::path temp_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("qa-fs-test-" + name + "-" + std::to_string(::getpid()));
  qa::remove_tree(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST(Fs, WriteFileAtomicReplacesContentAndLeavesNoTemporaries) {
  auto dir = temp_dir("atomic");
  auto path = (dir / "a.txt").string();
  write_file_atomic(path, "first");
  write_file_atomic(path, "second");
  EXPECT_EQ(read_file(path, "test file"), "second");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
  qa::remove_tree(dir);
}

TEST(Fs, PublishDirSwapsWholeFolders) {
  auto dir = temp_dir("publish");
  auto target = (dir / "model").string();
  for (const char* content : {"v1", "v2"}) {
    auto staging = make_staging_dir(target);
    write_file_atomic((fs::path(staging) / "w.bin").string(), content);
    publish_dir(staging, target);
    EXPECT_EQ(read_file((fs::path(target) / "w.bin").string(), "w"), content);
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);  // staging folders gone
  qa::remove_tree(dir);
}

TEST(Fs, ReadFileErrorsNameTheFile) {
  try {
    read_file("/nonexistent/x.jsonl", "data file");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.jsonl"), std::string::npos);
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
  }
}

TEST(Fs, EnsureWritableDirRejectsAnUnwritablePlace) {
  // Nobody, root included, can create folders in /proc.
  try {
    ensure_writable_dir("/proc/qa-train-test/out", "output.dir");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/qa-train-test/out: cannot create the output.dir folder"), std::string::npos)
        << e.what();
  }
}

TEST(Fs, EnsureWritableDirRejectsAFileInTheWay) {
  auto dir = temp_dir("file");
  std::ofstream((dir / "out").string()) << "x";
  EXPECT_THROW(ensure_writable_dir((dir / "out").string(), "output.dir"), Error);
  qa::remove_tree(dir);
}

TEST(Fs, ResolvePathAnchorsRelativePaths) {
  EXPECT_EQ(resolve_path("/cfg", "../data/train.jsonl"), "/data/train.jsonl");
  EXPECT_EQ(resolve_path("/cfg", "/abs/x"), "/abs/x");
  EXPECT_EQ(resolve_path("/cfg", ""), "");
}

TEST(Fs, RemoveTreeDeletesAFolderButNotWhatItsLinksPointTo) {
  const fs::path dir = fs::temp_directory_path() / ("qa_fs_tree_" + std::to_string(::getpid()));
  const fs::path outside = fs::temp_directory_path() / ("qa_fs_outside_" + std::to_string(::getpid()));
  qa::remove_tree(dir.string());
  fs::create_directories(dir / "a" / "b");
  fs::create_directories(outside);
  std::ofstream(dir / "a" / "b" / "f.txt") << "x";
  std::ofstream(outside / "keep.txt") << "y";
  fs::create_directory_symlink(outside, dir / "a" / "link");
  EXPECT_TRUE(qa::remove_tree(dir.string()));
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::exists(outside / "keep.txt"));
  EXPECT_TRUE(qa::remove_tree(dir.string()));  // already gone: nothing left
  EXPECT_TRUE(qa::remove_tree(outside.string()));
  EXPECT_FALSE(fs::exists(outside));
}

TEST(Fs, DiscardDirLeavesNothingBehindAndNoStagingFolder) {
  const fs::path parent = fs::temp_directory_path() / ("qa_fs_discard_" + std::to_string(::getpid()));
  qa::remove_tree(parent.string());
  fs::create_directories(parent / "step-4" / "sub");
  std::ofstream(parent / "step-4" / "sub" / "f.bin") << "x";
  EXPECT_TRUE(qa::discard_dir((parent / "step-4").string()));
  EXPECT_TRUE(fs::is_empty(parent));  // neither the folder nor the staging name it passed through
  EXPECT_TRUE(qa::discard_dir((parent / "missing").string()));
  // A deletion that stops halfway (here a folder whose contents cannot be deleted, unless running as
  // root) leaves only a staging folder, never a half-deleted folder under the old name.
  fs::create_directories(parent / "step-8" / "locked");
  std::ofstream(parent / "step-8" / "locked" / "f.bin") << "x";
  std::ofstream(parent / "step-8" / "g.bin") << "y";
  fs::permissions(parent / "step-8" / "locked", fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_TRUE(qa::discard_dir((parent / "step-8").string()));
  EXPECT_FALSE(fs::exists(parent / "step-8"));
  for (const auto& e : fs::directory_iterator(parent)) {
    EXPECT_EQ(e.path().filename().string().rfind(".step-8.tmp-", 0), 0u) << e.path();
    fs::permissions(e.path() / "locked", fs::perms::owner_all);
  }
  qa::remove_tree(parent.string());
  EXPECT_FALSE(fs::exists(parent));
}

}  // namespace qa
