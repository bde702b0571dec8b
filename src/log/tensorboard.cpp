#include "qa/log/tensorboard.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "qa/util/crc32c.hpp"
#include "qa/util/error.hpp"

namespace qa {
namespace tfevents {
namespace {

// Protocol-buffer wire types.
constexpr uint32_t kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void put_key(std::string& out, uint32_t field, uint32_t wire_type) { put_varint(out, (field << 3) | wire_type); }

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

void put_double(std::string& out, uint32_t field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, kFixed64);
  put_le(out, bits, 8);
}

void put_float(std::string& out, uint32_t field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, kFixed32);
  put_le(out, bits, 4);
}

void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

// Event fields 1 and 2; proto3 leaves zero values out, as TensorFlow's own writer does.
std::string event_header(double wall_time, int64_t step) {
  std::string e;
  if (wall_time != 0) put_double(e, 1, wall_time);
  if (step != 0) {
    put_key(e, 2, kVarint);
    put_varint(e, static_cast<uint64_t>(step));  // negative int64: ten bytes of two's complement
  }
  return e;
}

}  // namespace

std::string file_version_event(double wall_time) {
  std::string e = event_header(wall_time, 0);
  put_bytes(e, 3, "brain.Event:2");
  return e;
}

std::string scalars_event(double wall_time, int64_t step, const Scalars& scalars) {
  std::string summary;
  for (const auto& [tag, value] : scalars) {
    std::string v;
    put_bytes(v, 1, tag);
    put_float(v, 2, value);  // a oneof member: written even when 0
    put_bytes(summary, 1, v);
  }
  std::string e = event_header(wall_time, step);
  put_bytes(e, 5, summary);
  return e;
}

std::string session_start_event(double wall_time, int64_t step) {
  std::string session_log;
  put_key(session_log, 1, kVarint);
  put_varint(session_log, 1);  // SessionLog.START
  std::string e = event_header(wall_time, step);
  put_bytes(e, 7, session_log);
  return e;
}

uint32_t masked_crc32c(const void* data, std::size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string frame_record(const std::string& data) {
  std::string out;
  out.reserve(data.size() + 16);
  put_le(out, data.size(), 8);
  put_le(out, masked_crc32c(out.data(), 8), 4);
  out += data;
  put_le(out, masked_crc32c(data.data(), data.size()), 4);
  return out;
}

}  // namespace tfevents

tfevents::Scalars tensorboard_scalars(const nlohmann::json& event) {
  static const std::vector<std::pair<const char*, const char*>> kTrain = {
      {"loss", "train/loss"},
      {"lr", "train/learning_rate"},
      {"grad_norm", "train/grad_norm"},
      {"epoch", "train/epoch"},
      {"tokens_per_sec", "perf/tokens_per_sec"},
      {"padding_fraction", "perf/padding_fraction"},
      {"peak_rss_mb", "perf/peak_rss_mb"},
      {"cuda_peak_allocated_mb", "perf/cuda_peak_allocated_mb"},
      {"cuda_reserved_mb", "perf/cuda_reserved_mb"},
      {"mfu", "perf/mfu"},
  };
  static const std::vector<std::pair<const char*, const char*>> kEval = {
      {"eval_loss", "eval/loss"},
      {"exact_match", "eval/exact_match"},
      {"f1", "eval/f1"},
  };
  tfevents::Scalars out;
  if (!event.is_object()) return out;
  const auto kind = event.find("event");
  if (kind == event.end() || !kind->is_string()) return out;
  const auto* table = *kind == "train" ? &kTrain : *kind == "eval" ? &kEval : nullptr;
  if (!table) return out;
  for (const auto& [key, tag] : *table) {
    const auto it = event.find(key);
    if (it == event.end() || !it->is_number()) continue;
    const double v = it->get<double>();
    if (!std::isfinite(v) || std::fabs(v) > std::numeric_limits<float>::max()) continue;
    out.emplace_back(tag, static_cast<float>(v));
  }
  return out;
}

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string h(buf);
  for (char& c : h) {
    if (c == '/') c = '_';
  }
  return h;
}

}  // namespace

TensorBoardWriter::TensorBoardWriter(const std::string& logs_dir, int64_t resume_step) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(logs_dir) / "tensorboard";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir.string() + ": cannot create the TensorBoard folder: " + ec.message());

  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%010lld", static_cast<long long>(std::time(nullptr)));
  const std::string base = (dir / ("events.out.tfevents." + std::string(stamp) + "." + host_name())).string();
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {  // a second run in the same second: a new name
    path_ = attempt == 0 ? base
                         : base + "." + std::to_string(::getpid()) + (attempt == 1 ? "" : "." + std::to_string(attempt));
    fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) throw Error(path_ + ": cannot create the TensorBoard event file: " + std::strerror(errno));
  file_ = ::fdopen(fd, "wb");
  if (!file_) {
    const int err = errno;
    ::close(fd);
    throw Error(path_ + ": cannot open the TensorBoard event file: " + std::strerror(err));
  }
  const double t = now_seconds();
  append(tfevents::frame_record(tfevents::file_version_event(t)));
  if (resume_step >= 0) append(tfevents::frame_record(tfevents::session_start_event(t, resume_step + 1)));
  flush();
  // The new name must survive a crash too.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

TensorBoardWriter::~TensorBoardWriter() {
  if (!file_) return;
  std::fflush(file_);
  ::fsync(::fileno(file_));
  std::fclose(file_);
}

void TensorBoardWriter::append(const std::string& record) {
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() || std::fflush(file_) != 0) {
    throw Error(path_ + ": cannot write the TensorBoard event file: " + std::strerror(errno));
  }
}

void TensorBoardWriter::write_scalars(int64_t step, const tfevents::Scalars& scalars) {
  if (scalars.empty()) return;
  append(tfevents::frame_record(tfevents::scalars_event(now_seconds(), step, scalars)));
}

void TensorBoardWriter::write(const nlohmann::json& event) {
  if (!event.is_object()) return;
  const auto step = event.find("step");
  if (step == event.end() || !step->is_number_integer()) return;
  write_scalars(step->get<int64_t>(), tensorboard_scalars(event));
}

void TensorBoardWriter::flush() {
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
    throw Error(path_ + ": cannot write the TensorBoard event file: " + std::strerror(errno));
  }
}

}  // namespace qa
