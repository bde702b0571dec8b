#include "qa/util/utf8.hpp"

#include <gtest/gtest.h>

namespace qa {

TEST(Utf8, AcceptsWellFormedText) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));  // é € 😀
}

TEST(Utf8, RejectsMalformedSequencesWithOffset) {
  std::size_t at = 99;
  EXPECT_FALSE(is_valid_utf8("ab\xFF", &at));
  EXPECT_EQ(at, 2u);
  EXPECT_FALSE(is_valid_utf8("\xC3", &at));             // truncated
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF", &at));         // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\xAF", &at));     // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80", &at));     // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80", &at)); // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("x\xE2\x82", &at));        // truncated 3-byte
  EXPECT_EQ(at, 1u);
}

}  // namespace qa
