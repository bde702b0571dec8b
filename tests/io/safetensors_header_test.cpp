#include "qa/io/safetensors_header.hpp"

#include <gtest/gtest.h>

#include "qa/util/error.hpp"

namespace qa {
namespace {

std::string file_with(const std::string& header_json, std::size_t data_bytes) {
  std::string out(8, '\0');
  uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header_json + std::string(data_bytes, '\x01');
}

std::string parse_error(const std::string& file) {
  try {
    parse_safetensors_header(reinterpret_cast<const uint8_t*>(file.data()), file.size(), file.size(), "w.safetensors");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    return e.what();
  }
  return "";
}

}  // namespace

TEST(SafetensorsHeader, BuildThenParseRoundTrips) {
  std::vector<SafetensorsEntry> entries = {{"a", "F32", {2, 3}, 0, 24}, {"b.weight", "BF16", {4}, 24, 32}};
  std::string header = build_safetensors_header(entries, {{"format", "pt"}});
  EXPECT_EQ(header.size() % 8, 0u);
  std::string file = header + std::string(32, '\0');
  auto h = parse_safetensors_header(reinterpret_cast<const uint8_t*>(file.data()), file.size(), file.size(), "x");
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].name, "a");
  EXPECT_EQ(h.tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.tensors[1].dtype, "BF16");
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.data_start, header.size());
}

TEST(SafetensorsHeader, RejectsEveryKindOfCorruption) {
  struct Case {
    std::string file, expected;
  } cases[] = {
      {"abc", "shorter than the 8-byte"},
      {file_with("{}", 0).substr(0, 8) + "{", "runs past the end"},
      {std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}", "exceeds the 100 MiB limit"},
      {std::string("\x10\x00\x00\x00\x00\x00\x00\x00", 8) + "{}", "runs past the end"},
      {file_with("{\"a\": 1", 0), "not valid JSON"},
      {file_with("[1]", 0), "not a JSON object"},
      {file_with("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4), "file truncated"},
      {file_with("{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8), "different byte size"},
      {file_with("{\"a\": {\"dtype\": \"Q4\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8), "unknown dtype 'Q4'"},
      {file_with("{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8), "non-negative"},
      {file_with("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8), "begin > end"},
      {file_with("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
                 "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12), "overlaps"},
      {file_with("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12), "gap"},
      {file_with("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 12), "cover 8"},
      {file_with("{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4], \"data_offsets\": [0, 8]}}", 8),
       "different byte size"},
      {file_with("{\"a\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8), "missing dtype"},
      {file_with("{\"__metadata__\": {\"k\": 1}}", 0), "__metadata__ value"},
      {file_with("{\"\xff\": 1}", 0), "not valid UTF-8"},
  };
  for (const auto& c : cases) {
    std::string msg = parse_error(c.file);
    EXPECT_NE(msg.find("w.safetensors: corrupt safetensors file"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.expected), std::string::npos) << "got: " << msg << "\nexpected: " << c.expected;
  }
}

// Found by tests/fuzz (corpus/safetensors_header_fuzz/crash-number-overflow-*): a number too large for
// a double makes nlohmann throw out_of_range (not parse_error), which escaped as a non-qa::Error.
TEST(SafetensorsHeader, NumberTooLargeForADoubleIsCorruptNotACrash) {
  for (const char* header : {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, -1e30824]}}",
                             "{\"__metadata__\": {\"x\": \"y\"}, \"n\": 1e400}"}) {
    std::string msg = parse_error(file_with(header, 4));
    EXPECT_NE(msg.find("w.safetensors: corrupt safetensors file: header is not valid JSON"), std::string::npos) << msg;
    EXPECT_NE(msg.find("number overflow"), std::string::npos) << msg;
  }
}

TEST(SafetensorsHeader, FewerBytesAvailableThanTheHeaderNeedsIsAnError) {
  std::string file = file_with("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4);
  EXPECT_THROW(parse_safetensors_header(reinterpret_cast<const uint8_t*>(file.data()), 12, file.size(), "x"), Error);
}

TEST(SafetensorsHeader, DtypeSizes) {
  EXPECT_EQ(safetensors_dtype_size("F32"), 4u);
  EXPECT_EQ(safetensors_dtype_size("BF16"), 2u);
  EXPECT_EQ(safetensors_dtype_size("F16"), 2u);
  EXPECT_EQ(safetensors_dtype_size("I64"), 8u);
  EXPECT_EQ(safetensors_dtype_size("nope"), 0u);
}

}  // namespace qa
