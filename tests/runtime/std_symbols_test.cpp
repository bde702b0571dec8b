// Every torch program resolves the C++ standard library to libstdc++ itself, not to the copies that
// PyTorch's pip wheels export (pytorch/pytorch#133437: std::filesystem::remove_all there crashed
// qa-train and these tests on the GPU machine). Debian's LibTorch exports none, so here it holds
// either way; against a pip wheel it fails without the link order set in CMakeLists.txt.
#include <dlfcn.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace {

std::string library_of(const void* address) {
  Dl_info info{};
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "";
  return info.dli_fname;
}

}  // namespace

TEST(StdSymbols, FilesystemFunctionsComeFromLibstdcxx) {
  // Code built with -fPIC takes a function's address through the GOT: the process-wide binding.
  std::uintmax_t (*remove_all)(const std::filesystem::path&) = &std::filesystem::remove_all;
  bool (*create_directories)(const std::filesystem::path&) = &std::filesystem::create_directories;
  for (const void* f : {reinterpret_cast<const void*>(remove_all), reinterpret_cast<const void*>(create_directories)}) {
    const std::string lib = library_of(f);
    EXPECT_NE(lib.find("libstdc++"), std::string::npos) << "bound to " << (lib.empty() ? "an unknown object" : lib);
  }
}
