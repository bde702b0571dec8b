#include "qa/log/tensorboard.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "qa/util/crc32c.hpp"
#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"

namespace qa {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("qa-tb-" + name + "-" + std::to_string(::getpid()));
  qa::remove_tree(d);
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s += static_cast<char>(c);
  return s;
}

uint32_t le32(const std::string& s, std::size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<std::size_t>(i)]);
  return v;
}

uint64_t le64(const std::string& s, std::size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<std::size_t>(i)]);
  return v;
}

// Splits a TFRecord file, checking both CRCs of every record (the writer's own framing, re-checked here).
std::vector<std::string> records(const std::string& file) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  auto masked = [](const char* p, std::size_t n) {
    const uint32_t c = crc32c(p, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
  };
  while (pos < file.size()) {
    EXPECT_GE(file.size() - pos, 16u);
    if (file.size() - pos < 16) break;
    const uint64_t n = le64(file, pos);
    EXPECT_EQ(le32(file, pos + 8), masked(file.data() + pos, 8));
    EXPECT_LE(pos + 16 + n, file.size());
    if (pos + 16 + n > file.size()) break;
    EXPECT_EQ(le32(file, pos + 12 + n), masked(file.data() + pos + 12, n));
    out.push_back(file.substr(pos + 12, n));
    pos += 16 + n;
  }
  return out;
}

const std::string kPython = "/usr/bin/python3";

std::string decoder_script() { return (fs::path(QA_FIXTURES).parent_path() / "log" / "decode_tfevents.py").string(); }

bool python_protobuf_available() {
  return std::system((kPython + " -c 'import google.protobuf' >/dev/null 2>&1").c_str()) == 0;
}

int run_decoder(const fs::path& events, const fs::path& metrics, const fs::path& out) {
  const std::string cmd = kPython + " '" + decoder_script() + "' '" + events.string() + "' '" + metrics.string() +
                          "' >'" + out.string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

// Expected bytes worked out by hand from the protobuf wire format and TensorBoard's field numbers.
TEST(TensorBoard, EncodesEventsWithTensorBoardFieldNumbers) {
  // Event{step: 5, summary: {value: [{tag: "a", simple_value: 1.0}]}}
  EXPECT_EQ(tfevents::scalars_event(0, 5, {{"a", 1.0f}}),
            bytes({0x10, 0x05, 0x2a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, 'a', 0x15, 0x00, 0x00, 0x80, 0x3f}));
  // A zero value is still written (simple_value is a oneof member); step 300 is a two-byte varint.
  EXPECT_EQ(tfevents::scalars_event(0, 300, {{"b", 0.0f}}),
            bytes({0x10, 0xac, 0x02, 0x2a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, 'b', 0x15, 0x00, 0x00, 0x00, 0x00}));
  // Event{wall_time: 2.0, file_version: "brain.Event:2"}
  EXPECT_EQ(tfevents::file_version_event(2.0),
            bytes({0x09, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x1a, 13}) + "brain.Event:2");
  // Event{step: 7, session_log: {status: START}}
  EXPECT_EQ(tfevents::session_start_event(0, 7), bytes({0x10, 0x07, 0x3a, 0x02, 0x08, 0x01}));
}

TEST(TensorBoard, FramesRecordsWithMaskedCrc32c) {
  // crc32c("") = 0, so its masked CRC is the mask's constant.
  EXPECT_EQ(tfevents::masked_crc32c("", 0), 0xa282ead8u);
  const uint32_t c = 0xE3069283u;  // crc32c("123456789")
  EXPECT_EQ(tfevents::masked_crc32c("123456789", 9), ((c >> 15) | (c << 17)) + 0xa282ead8u);
  const std::string rec = tfevents::frame_record("xyz");
  ASSERT_EQ(rec.size(), 8u + 4u + 3u + 4u);
  EXPECT_EQ(le64(rec, 0), 3u);
  EXPECT_EQ(le32(rec, 8), tfevents::masked_crc32c(rec.data(), 8));
  EXPECT_EQ(rec.substr(12, 3), "xyz");
  EXPECT_EQ(le32(rec, 15), tfevents::masked_crc32c("xyz", 3));
}

TEST(TensorBoard, MapsMetricsEventsToHuggingFaceTags) {
  const json train = {{"event", "train"}, {"step", 10}, {"epoch", 1}, {"loss", 2.5}, {"lr", 1e-3},
                      {"grad_norm", nullptr}, {"tokens_per_sec", 1234.5}, {"padding_fraction", 0.25},
                      {"elapsed_sec", 3.0}, {"mfu", 0.125}, {"cuda_peak_allocated_mb", 1536.0},
                      {"cuda_reserved_mb", 2048.0}, {"cuda_peak_reserved_mb", 4096.0}};
  const auto s = tensorboard_scalars(train);
  const tfevents::Scalars expected = {{"train/loss", 2.5f}, {"train/learning_rate", 1e-3f}, {"train/epoch", 1.0f},
                                      {"perf/tokens_per_sec", 1234.5f}, {"perf/padding_fraction", 0.25f},
                                      {"perf/cuda_peak_allocated_mb", 1536.0f}, {"perf/cuda_reserved_mb", 2048.0f},
                                      {"perf/mfu", 0.125f}};
  EXPECT_EQ(s, expected);  // grad_norm null and elapsed_sec (no tag) left out
  const json eval = {{"event", "eval"}, {"step", 10}, {"loss", 2.0}, {"eval_loss", 1.5}, {"exact_match", 50.0},
                     {"f1", std::numeric_limits<double>::quiet_NaN()}, {"eval_seconds", 0.5}};
  EXPECT_EQ(tensorboard_scalars(eval), (tfevents::Scalars{{"eval/loss", 1.5f}, {"eval/exact_match", 50.0f}}));
  EXPECT_TRUE(tensorboard_scalars({{"event", "train"}, {"step", 1}, {"loss", 1e300}}).empty());  // beyond float
  EXPECT_TRUE(tensorboard_scalars({{"event", "other"}, {"step", 1}, {"loss", 1.0}}).empty());
  EXPECT_TRUE(tensorboard_scalars(json::array()).empty());
}

TEST(TensorBoard, WriterCreatesOneFilePerRunStartingWithTheFileVersion) {
  const auto dir = fresh_dir("files");
  std::string first, second;
  {
    TensorBoardWriter a(dir.string());
    TensorBoardWriter b(dir.string(), /*resume_step=*/40);  // same second: a different name
    first = a.path();
    second = b.path();
    a.write({{"event", "train"}, {"step", 5}, {"loss", 3.0}, {"lr", 0.5}});
    a.write({{"event", "train"}, {"loss", 3.0}});                 // no step: nothing
    a.write({{"event", "train"}, {"step", 6}, {"grad_norm", nullptr}});  // no scalars: nothing
    a.flush();
  }
  EXPECT_NE(first, second);
  EXPECT_EQ(fs::path(first).parent_path(), dir / "tensorboard");
  EXPECT_EQ(fs::path(first).filename().string().rfind("events.out.tfevents.", 0), 0u) << first;
  auto ra = records(slurp(first));
  ASSERT_EQ(ra.size(), 2u);
  EXPECT_NE(ra[0].find("brain.Event:2"), std::string::npos);
  EXPECT_NE(ra[1].find(bytes({0x10, 0x05, 0x2a})), std::string::npos);  // step 5, then the summary
  EXPECT_NE(ra[1].find("train/loss"), std::string::npos);
  EXPECT_NE(ra[1].find("train/learning_rate"), std::string::npos);
  auto rb = records(slurp(second));
  ASSERT_EQ(rb.size(), 2u);
  EXPECT_NE(rb[1].find(bytes({0x10, 41, 0x3a, 0x02, 0x08, 0x01})), std::string::npos);  // START at step 41
  qa::remove_tree(dir);
}

// Every write reaches the kernel at once: a run killed with SIGKILL (no destructor, no flush) leaves
// complete, readable records.
TEST(TensorBoard, KilledRunLeavesReadableEvents) {
  const auto dir = fresh_dir("killed");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto* w = new TensorBoardWriter(dir.string());  // never destroyed
    w->write({{"event", "train"}, {"step", 5}, {"loss", 3.0}});
    w->write({{"event", "eval"}, {"step", 5}, {"eval_loss", 2.0}, {"f1", 10.0}});
    ::raise(SIGKILL);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  std::vector<fs::path> files(fs::directory_iterator(dir / "tensorboard"), fs::directory_iterator());
  ASSERT_EQ(files.size(), 1u);
  const auto recs = records(slurp(files[0]));
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_NE(recs[2].find("eval/f1"), std::string::npos);
  qa::remove_tree(dir);
}

TEST(TensorBoard, ErrorsNameTheFolder) {
  const auto dir = fresh_dir("error");
  std::ofstream(dir / "logs") << "a file, not a folder";
  try {
    TensorBoardWriter w((dir / "logs").string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "logs").string()), std::string::npos) << e.what();
  }
  qa::remove_tree(dir);
}

// The independent check: tests/log/decode_tfevents.py verifies every CRC with its own CRC-32C, parses
// the records with protobuf's parser against TensorBoard's field numbers and compares with metrics.jsonl.
TEST(TensorBoard, PythonProtobufDecoderAgreesWithMetricsJsonl) {
  if (!python_protobuf_available()) {
    GTEST_SKIP() << kPython << " cannot import google.protobuf: install Debian's python3-protobuf "
                 << "(apt-get install -y python3-protobuf) to run the independent TensorBoard file check";
  }
  const auto dir = fresh_dir("python");
  std::vector<json> events = {
      {{"event", "train"}, {"step", 5}, {"epoch", 0}, {"loss", 6.2069236755371096}, {"lr", 0.003},
       {"grad_norm", 2.587550401687622}, {"tokens_per_sec", 59837.023911884615},
       {"padding_fraction", 0.04182156133828996}, {"peak_rss_mb", 312.5}, {"elapsed_sec", 0.27}},
      {{"event", "train"}, {"step", 10}, {"epoch", 0}, {"loss", 5.48363671875}, {"lr", 0.002923076923076923},
       {"grad_norm", nullptr}, {"tokens_per_sec", 66629.349480202}, {"padding_fraction", 0.0},
       {"cuda_peak_allocated_mb", 1536.25}, {"cuda_reserved_mb", 2048.0}, {"elapsed_sec", 0.33}},
      {{"event", "eval"}, {"step", 10}, {"epoch", 0}, {"loss", 5.48363671875}, {"lr", 0.002923076923076923},
       {"tokens_per_sec", 66629.349480202}, {"eval_loss", 4.185169361255787}, {"exact_match", 12.5},
       {"f1", 20.833333333333332}, {"eval_examples", 16}, {"eval_seconds", 0.0265}, {"elapsed_sec", 0.9}},
      {{"event", "train"}, {"step", 1000000000000}, {"epoch", 3}, {"loss", 1e-7}, {"lr", 0.0},
       {"grad_norm", 1e30}, {"tokens_per_sec", 1.0}, {"padding_fraction", 1.0}, {"mfu", 0.4}, {"elapsed_sec", 9.0}},
  };
  std::string events_file;
  {
    TensorBoardWriter w(dir.string());
    events_file = w.path();
    for (const auto& e : events) w.write(e);
    w.flush();
  }
  {
    std::ofstream m(dir / "metrics.jsonl");
    for (const auto& e : events) m << e.dump() << "\n";
  }
  EXPECT_EQ(run_decoder(events_file, dir / "metrics.jsonl", dir / "out.txt"), 0) << slurp(dir / "out.txt");
  const std::string out = slurp(dir / "out.txt");
  EXPECT_NE(out.find("file_version\tbrain.Event:2"), std::string::npos) << out;
  EXPECT_NE(out.find("10\teval/f1\t20.833334\n"), std::string::npos) << out;
  EXPECT_NE(out.find("OK: 24 scalars match"), std::string::npos) << out;

  // A value that differs from metrics.jsonl is reported.
  {
    auto changed = events;
    changed[2]["exact_match"] = 25.0;
    std::ofstream m(dir / "changed.jsonl");
    for (const auto& e : changed) m << e.dump() << "\n";
  }
  EXPECT_EQ(run_decoder(events_file, dir / "changed.jsonl", dir / "out2.txt"), 1);
  EXPECT_NE(slurp(dir / "out2.txt").find("eval/exact_match"), std::string::npos) << slurp(dir / "out2.txt");

  // A flipped bit in a record's data fails its CRC.
  std::string blob = slurp(events_file);
  blob[blob.size() - 10] ^= 0x01;
  std::ofstream(dir / "corrupt.tfevents", std::ios::binary) << blob;
  EXPECT_EQ(run_decoder(dir / "corrupt.tfevents", dir / "metrics.jsonl", dir / "out3.txt"), 1);
  EXPECT_NE(slurp(dir / "out3.txt").find("data CRC mismatch"), std::string::npos) << slurp(dir / "out3.txt");
  qa::remove_tree(dir);
}

}  // namespace qa
