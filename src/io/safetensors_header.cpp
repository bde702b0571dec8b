#include "qa/io/safetensors_header.hpp"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

#include "qa/util/error.hpp"
#include "qa/util/utf8.hpp"

namespace qa {
namespace {
using json = nlohmann::json;
}

std::size_t safetensors_dtype_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
  return 0;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* data, std::size_t available, uint64_t file_size,
                                           const std::string& source) {
  auto bad = [&](const std::string& what) { throw_bad_file(source, "corrupt safetensors file: " + what); };
  if (file_size < 8 || available < 8) bad("shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  if (n > kMaxSafetensorsHeader) bad("header length " + std::to_string(n) + " exceeds the 100 MiB limit");
  if (n > file_size - 8) bad("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(file_size) + " bytes)");
  if (n > available - 8) bad("header truncated");
  const char* text = reinterpret_cast<const char*>(data + 8);
  std::string_view header(text, static_cast<std::size_t>(n));
  if (!is_valid_utf8(header)) bad("header is not valid UTF-8");
  json j;
  try {
    j = json::parse(header.begin(), header.end());
  } catch (const json::exception& e) {
    // parse_error, or out_of_range.406 for a number too large for a double (1e400).
    bad(std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) bad("header is not a JSON object");

  SafetensorsHeader out;
  out.data_start = 8 + n;
  const uint64_t buffer_size = file_size - out.data_start;
  for (const auto& [name, info] : j.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) bad("__metadata__ is not an object");
      for (const auto& [k, v] : info.items()) {
        if (!v.is_string()) bad("__metadata__ value of '" + k + "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    auto where = "tensor '" + name + "': ";
    if (!info.is_object()) bad(where + "entry is not an object");
    if (!info.contains("dtype") || !info["dtype"].is_string()) bad(where + "missing dtype");
    if (!info.contains("shape") || !info["shape"].is_array()) bad(where + "missing shape");
    if (!info.contains("data_offsets") || !info["data_offsets"].is_array() || info["data_offsets"].size() != 2) {
      bad(where + "data_offsets must be [begin, end]");
    }
    SafetensorsEntry e;
    e.name = name;
    e.dtype = info["dtype"].get<std::string>();
    const std::size_t elem = safetensors_dtype_size(e.dtype);
    if (elem == 0) bad(where + "unknown dtype '" + e.dtype + "'");
    uint64_t count = 1;
    bool overflow = false;
    for (const auto& d : info["shape"]) {
      if (!d.is_number_unsigned()) bad(where + "shape entries must be non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 62)) bad(where + "shape entry too large");
      e.shape.push_back(static_cast<int64_t>(dim));
      if (dim != 0 && count > UINT64_MAX / dim) overflow = true;
      count *= dim;
    }
    for (const auto& o : info["data_offsets"]) {
      if (!o.is_number_unsigned()) bad(where + "data_offsets must be non-negative integers");
    }
    e.begin = info["data_offsets"][0].get<uint64_t>();
    e.end = info["data_offsets"][1].get<uint64_t>();
    if (e.begin > e.end) bad(where + "data_offsets begin > end");
    if (e.end > buffer_size) {
      bad(where + "data ends at byte " + std::to_string(e.end) + " but the data buffer has " +
          std::to_string(buffer_size) + " bytes (file truncated?)");
    }
    if (overflow || count > UINT64_MAX / elem || count * elem != e.end - e.begin) {
      bad(where + "shape and dtype need a different byte size than data_offsets give");
    }
    out.tensors.push_back(std::move(e));
  }
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  uint64_t expected = 0;
  for (const auto& e : out.tensors) {
    if (e.begin < expected) bad("tensor '" + e.name + "' overlaps the previous tensor");
    if (e.begin > expected) bad("gap in the data buffer before tensor '" + e.name + "'");
    expected = e.end;
  }
  if (expected != buffer_size) {
    bad("the data buffer has " + std::to_string(buffer_size) + " bytes but the tensors cover " + std::to_string(expected));
  }
  return out;
}

std::string build_safetensors_header(const std::vector<SafetensorsEntry>& entries,
                                     const std::map<std::string, std::string>& metadata) {
  json j = json::object();
  if (!metadata.empty()) j["__metadata__"] = metadata;
  for (const auto& e : entries) {
    j[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
  }
  std::string text = j.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data buffer 8-byte aligned
  std::string out(8, '\0');
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + text;
}

}  // namespace qa
