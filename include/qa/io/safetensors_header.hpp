// The safetensors container format, without torch: parsing and validating the header of untrusted
// bytes, and building the header of a file to write.
//
// Layout: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data buffer; offsets are relative to the start of the buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace qa {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;            // "F32", "BF16", "F16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range inside the data buffer
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> tensors;  // in file (offset) order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data buffer (8 + header length)
};

// Largest header accepted (the reference implementation's limit).
inline constexpr uint64_t kMaxSafetensorsHeader = 100u << 20;

// Bytes per element of a safetensors dtype, or 0 when the dtype is unknown.
std::size_t safetensors_dtype_size(const std::string& dtype);

// Validates and parses the header of a safetensors file whose first bytes are `data` (at least
// min(file_size, 8 + header length) of them) and whose total size is `file_size`. Checks: header
// length within the file, valid UTF-8 JSON object, known dtypes, non-negative shapes, offsets inside
// the buffer, byte size = elements x dtype size (without overflow), no overlaps and no gaps.
// Throws qa::Error "SOURCE: what" (exit code kBadInput).
SafetensorsHeader parse_safetensors_header(const uint8_t* data, std::size_t available, uint64_t file_size,
                                           const std::string& source);

// The 8-byte length prefix plus JSON header (space-padded to a multiple of 8) for `entries`.
std::string build_safetensors_header(const std::vector<SafetensorsEntry>& entries,
                                     const std::map<std::string, std::string>& metadata);

}  // namespace qa
