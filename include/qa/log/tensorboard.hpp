// TensorBoard scalar summaries: logs/tensorboard/events.out.tfevents.<unix time>.<host>, in TensorBoard's own
// format (TFRecord framing of tensorboard.Event protocol buffers), written without TensorFlow or protobuf.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace qa {

// The encoding, exposed for tests. Field numbers are those of tensorboard/compat/proto/event.proto and
// summary.proto: Event {double wall_time = 1; int64 step = 2; oneof what {string file_version = 3;
// Summary summary = 5; SessionLog session_log = 7}}, Summary {repeated Value value = 1},
// Summary.Value {string tag = 1; float simple_value = 2}, SessionLog {SessionStatus status = 1} (START = 1).
namespace tfevents {

using Scalars = std::vector<std::pair<std::string, float>>;

// The first event of every file: file_version "brain.Event:2".
std::string file_version_event(double wall_time);
// One Event with a Summary of simple_value scalars.
std::string scalars_event(double wall_time, int64_t step, const Scalars& scalars);
// SessionLog START at `step`: TensorBoard then discards the events logged before it at steps >= `step`
// (what a killed run logged after the checkpoint that its resumed run restarts from).
std::string session_start_event(double wall_time, int64_t step);
// TFRecord framing: uint64 length, masked CRC-32C of the length, data, masked CRC-32C of the data
// (little endian).
std::string frame_record(const std::string& data);
// TFRecord's CRC mask: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(const void* data, std::size_t size);

}  // namespace tfevents

// The scalars of one metrics.jsonl event, with Hugging Face Trainer's tag names where it has one:
//   train: loss -> train/loss, lr -> train/learning_rate, grad_norm -> train/grad_norm, epoch -> train/epoch,
//          tokens_per_sec -> perf/tokens_per_sec, padding_fraction -> perf/padding_fraction,
//          peak_rss_mb -> perf/peak_rss_mb, mfu -> perf/mfu, and on CUDA cuda_peak_allocated_mb ->
//          perf/cuda_peak_allocated_mb, cuda_reserved_mb -> perf/cuda_reserved_mb;
//   eval:  eval_loss -> eval/loss, exact_match -> eval/exact_match, f1 -> eval/f1.
// Missing, null and non-finite values (also those beyond float range) are left out; other events give none.
tfevents::Scalars tensorboard_scalars(const nlohmann::json& event);

// One event file per run (rank 0 only): every run, a resumed one too, starts a new file, as TensorBoard
// expects. Each write is handed to the kernel at once (a killed process loses nothing written);
// flush() also fsyncs (call it at every evaluation; the destructor calls it too). Errors are qa::Error
// naming the file.
class TensorBoardWriter {
 public:
  // Creates logs_dir/tensorboard/ and a new events.out.tfevents.<unix time>.<hostname> there (".<pid>" is
  // added if that name is taken) starting with the file_version event. A resumed run passes the step of
  // its checkpoint as `resume_step`: a SessionLog START event at resume_step + 1 follows, so TensorBoard
  // drops what the earlier run logged after that checkpoint (the steps it repeats).
  explicit TensorBoardWriter(const std::string& logs_dir, int64_t resume_step = -1);
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;
  ~TensorBoardWriter();

  // Writes the scalars of one metrics.jsonl event (see tensorboard_scalars) at event["step"], stamped with
  // the current time. Events without an integer step or without scalars write nothing.
  void write(const nlohmann::json& event);
  // Writes one Event with these scalars (wall_time = now).
  void write_scalars(int64_t step, const tfevents::Scalars& scalars);
  // fflush + fsync.
  void flush();

  const std::string& path() const { return path_; }

 private:
  void append(const std::string& record);

  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace qa
