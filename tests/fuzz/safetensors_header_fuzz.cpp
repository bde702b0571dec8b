// libFuzzer target: parse_safetensors_header on untrusted bytes, with the whole file present
// (available == file_size == input size) and with a file larger than the bytes at hand (the header
// read from the start of a big file, or a truncated file). qa::Error is the designed outcome for bad
// input; anything else escaping, a crash, a sanitizer report, a timeout or running out of memory is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "qa/io/safetensors_header.hpp"
#include "qa/util/error.hpp"

namespace {

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "safetensors_header_fuzz: accepted header breaks a guarantee: %s\n", what);
  std::abort();
}

// What a successful parse promises: the header lies inside the bytes, the tensors tile the data
// buffer exactly (sorted, no gaps, no overlaps) and each one's byte size matches its shape and dtype.
void check(const qa::SafetensorsHeader& h, std::size_t available, uint64_t file_size) {
  if (h.data_start < 8 || h.data_start > available || h.data_start > file_size) broken("data_start");
  const uint64_t buffer = file_size - h.data_start;
  uint64_t expected = 0;
  for (const auto& t : h.tensors) {
    if (t.begin != expected || t.end < t.begin || t.end > buffer) broken("offsets");
    const std::size_t elem = qa::safetensors_dtype_size(t.dtype);
    if (elem == 0) broken("dtype");
    unsigned __int128 bytes = elem;
    for (int64_t d : t.shape) {
      if (d < 0) broken("negative dim");
      bytes *= static_cast<uint64_t>(d);
      if (bytes > UINT64_MAX) bytes = static_cast<unsigned __int128>(UINT64_MAX) + 1;  // saturate
    }
    if (bytes != t.end - t.begin) broken("byte size");
    expected = t.end;
  }
  if (expected != buffer) broken("buffer not covered");
}

// An accepted header, written back by build_safetensors_header, parses to the same tensors.
void round_trip(const qa::SafetensorsHeader& h, uint64_t file_size) {
  const std::string header = qa::build_safetensors_header(h.tensors, h.metadata);
  const uint64_t buffer = file_size - h.data_start;
  if (header.size() > UINT64_MAX - buffer) return;  // the rebuilt file would be larger than 2^64 bytes
  qa::SafetensorsHeader again;
  try {
    again = qa::parse_safetensors_header(reinterpret_cast<const uint8_t*>(header.data()), header.size(),
                                         header.size() + buffer, "round-trip");
  } catch (const qa::Error& e) {
    std::fprintf(stderr, "safetensors_header_fuzz: rebuilt header rejected: %s\n", e.what());
    std::abort();
  }
  if (again.metadata != h.metadata || again.tensors.size() != h.tensors.size()) broken("round trip");
  for (std::size_t i = 0; i < h.tensors.size(); ++i) {
    const auto &a = h.tensors[i], &b = again.tensors[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.begin != b.begin || a.end != b.end) {
      broken("round trip tensor");
    }
  }
}

void parse(const uint8_t* data, std::size_t available, uint64_t file_size) {
  try {
    auto h = qa::parse_safetensors_header(data, available, file_size, "fuzz.safetensors");
    check(h, available, file_size);
    round_trip(h, file_size);
  } catch (const qa::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  parse(data, size, size);
  // The file goes on beyond the bytes given: a little, a lot (a data buffer of many GiB), the most.
  parse(data, size, uint64_t{size} + 1);
  parse(data, size, uint64_t{size} + (uint64_t{1} << 40));
  parse(data, size, UINT64_MAX);
  return 0;
}
