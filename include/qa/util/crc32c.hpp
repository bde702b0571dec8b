// CRC-32C (Castagnoli), the checksum of checkpoint manifests and of TensorBoard's record framing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace qa {

// CRC-32C of `size` bytes, continuing from `crc` (0 for a fresh checksum).
uint32_t crc32c(const void* data, std::size_t size, uint32_t crc = 0);
inline uint32_t crc32c(const std::string& s) { return crc32c(s.data(), s.size()); }

// CRC-32C and size of a whole file, read in chunks. Throws qa::Error naming the file on I/O errors.
struct FileChecksum {
  uint64_t bytes = 0;
  uint32_t crc = 0;
};
FileChecksum crc32c_file(const std::string& path);

}  // namespace qa
