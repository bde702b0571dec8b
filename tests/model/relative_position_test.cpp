#include "qa/model/relative_position.hpp"

#include <gtest/gtest.h>

#include "../support/reference.hpp"

namespace qa {

// Every relative position in [-R, R] gets the reference's bucket, for the encoder (bidirectional)
// and the decoder (causal), with the fixture's 32 buckets and max distance 128.
TEST(RelativePosition, BucketsMatchTheReferenceTables) {
  const auto& ref = test::reference()["relative_position_buckets"];
  const int64_t r = ref["R"].get<int64_t>();
  auto positions = torch::arange(-r, r + 1, torch::kLong);
  auto enc = relative_position_bucket(positions, /*bidirectional=*/true, 32, 128);
  auto dec = relative_position_bucket(positions, /*bidirectional=*/false, 32, 128);
  auto enc_ref = test::tensor_of(ref["encoder_bidirectional"], torch::kLong);
  auto dec_ref = test::tensor_of(ref["decoder_unidirectional"], torch::kLong);
  ASSERT_EQ(enc.sizes(), enc_ref.sizes());
  EXPECT_TRUE(torch::equal(enc, enc_ref)) << "first mismatch at relative position "
                                          << (torch::nonzero(enc != enc_ref)[0][0].item<int64_t>() - r);
  EXPECT_TRUE(torch::equal(dec, dec_ref));
}

TEST(RelativePosition, TableForOffsetQueriesIsASliceOfTheFullTable) {
  auto full = relative_position_buckets(10, 10, 0, false, 32, 128);
  auto last = relative_position_buckets(1, 10, 9, false, 32, 128);
  EXPECT_TRUE(torch::equal(full.slice(0, 9, 10), last));
  // Causal: future keys fall in bucket 0, the query's own position too.
  EXPECT_EQ(full[0][5].item<int64_t>(), 0);
  EXPECT_EQ(full[5][5].item<int64_t>(), 0);
  EXPECT_EQ(full[5][4].item<int64_t>(), 1);
}

}  // namespace qa
