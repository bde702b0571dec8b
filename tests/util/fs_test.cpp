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

}  // namespace qa
