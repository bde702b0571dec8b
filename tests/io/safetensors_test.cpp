#include "qa/io/safetensors.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "../support/reference.hpp"
#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"

namespace qa {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("qa-st-" + std::to_string(::getpid()) + "-" + name)).string();
}

}  // namespace

TEST(Safetensors, WriteThenReadIsBitwiseEqual) {
  auto path = temp_path("roundtrip.safetensors");
  torch::manual_seed(1);
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"a.weight", torch::randn({3, 5})}, {"b", torch::randn({7})}, {"empty", torch::zeros({0, 4})},
      {"half", torch::randn({2, 2}).to(torch::kBFloat16)}};
  save_safetensors(path, tensors);
  auto back = load_safetensors(path, torch::kFloat);
  ASSERT_EQ(back.size(), 4u);
  EXPECT_TRUE(torch::equal(back.at("a.weight"), tensors[0].second));
  EXPECT_TRUE(torch::equal(back.at("b"), tensors[1].second));
  EXPECT_EQ(back.at("empty").sizes(), (std::vector<int64_t>{0, 4}));
  EXPECT_TRUE(torch::equal(back.at("half"), tensors[3].second.to(torch::kFloat)));  // BF16 -> F32 exactly
  std::filesystem::remove(path);
}

TEST(Safetensors, ReadsTheHuggingFaceFixture) {
  auto t = load_safetensors(test::fixture_model_dir() + "/model.safetensors");
  EXPECT_EQ(t.at("shared.weight").sizes(), (std::vector<int64_t>{200, 64}));
  EXPECT_EQ(t.count("encoder.embed_tokens.weight"), 0u);
  EXPECT_EQ(t.size(), test::reference()["tensors_in_safetensors"].size());
}

TEST(Safetensors, TruncatedFileIsAClearError) {
  auto src = read_file(test::fixture_model_dir() + "/model.safetensors", "weights");
  for (std::size_t keep : {std::size_t{0}, std::size_t{5}, std::size_t{100}, src.size() / 2, src.size() - 1}) {
    auto path = temp_path("cut.safetensors");
    std::ofstream(path, std::ios::binary).write(src.data(), static_cast<std::streamsize>(keep));
    try {
      load_safetensors(path);
      ADD_FAILURE() << "no error at " << keep << " bytes";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(path + ": corrupt safetensors file", 0), 0u) << e.what();
    }
    std::filesystem::remove(path);
  }
}

}  // namespace qa
