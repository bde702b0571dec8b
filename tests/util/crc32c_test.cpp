#include "qa/util/crc32c.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace qa {

// Check values from RFC 3720 (iSCSI), appendix B.4, and the common "123456789" check value.
TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string inc(32, '\0');
  for (int i = 0; i < 32; ++i) inc[static_cast<std::size_t>(i)] = static_cast<char>(i);
  EXPECT_EQ(crc32c(inc), 0x46DD794Eu);
  EXPECT_EQ(crc32c(""), 0u);
}

TEST(Crc32c, ChunkedEqualsWhole) {
  std::string s;
  for (int i = 0; i < 1000; ++i) s += static_cast<char>(i * 7 + 3);
  const uint32_t whole = crc32c(s);
  for (std::size_t cut : {0u, 1u, 7u, 8u, 9u, 500u, 999u}) {
    EXPECT_EQ(crc32c(s.data() + cut, s.size() - cut, crc32c(s.data(), cut)), whole) << cut;
  }
}

TEST(Crc32c, FileChecksumMatchesMemory) {
  auto path = std::filesystem::temp_directory_path() / ("qa-crc-" + std::to_string(::getpid()));
  std::string s(3 << 20, 'x');
  s[12345] = 'y';
  std::ofstream(path, std::ios::binary) << s;
  auto c = crc32c_file(path.string());
  EXPECT_EQ(c.bytes, s.size());
  EXPECT_EQ(c.crc, crc32c(s));
  std::filesystem::remove(path);
}

}  // namespace qa
