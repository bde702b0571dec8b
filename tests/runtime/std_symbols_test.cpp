// PyTorch's pip wheels (the LibTorch of a typical GPU machine) export their own copies of some
// std::filesystem functions (pytorch/pytorch#133437). A program linked against them binds to those
// copies whatever its link order, and std::filesystem::remove_all there jumps to address 0: it
// crashed qa-train's tests on the GPU machine. So no source of qa-train or its tests calls it
// (util/fs remove_tree does that job); this test keeps it that way. It lives with the torch tests
// because the hazard is LibTorch's.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace fs = std::filesystem;

TEST(StdSymbols, NoSourceCallsStdFilesystemRemoveAll) {
  const fs::path root = QA_SOURCE_DIR;
  const std::string self = fs::path(__FILE__).filename().string();
  int scanned = 0;
  for (const char* dir : {"src", "include", "tests", "bench"}) {
    if (!fs::is_directory(root / dir)) continue;
    for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
      const std::string ext = e.path().extension().string();
      if (!e.is_regular_file() || (ext != ".cpp" && ext != ".hpp" && ext != ".h")) continue;
      if (e.path().filename() == self) continue;
      std::ifstream in(e.path());
      std::stringstream text;
      text << in.rdbuf();
      ++scanned;
      EXPECT_EQ(text.str().find("remove_all("), std::string::npos)
          << e.path().string() << " calls remove_all: use qa::remove_tree (util/fs.hpp)";
    }
  }
  EXPECT_GT(scanned, 50);  // the sources were found
}
