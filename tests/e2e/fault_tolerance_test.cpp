// End to end: a run that is stopped, killed or starved of disk space loses at most the work since its
// last checkpoint, never leaves a checkpoint that cannot be loaded, and resumes exactly.
#include <unistd.h>

#include "cli_support.hpp"
#include "qa/train/checkpoint_store.hpp"
#include "qa/util/crc32c.hpp"
#include "qa/util/fs.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace qa::e2e;

namespace {

// (step, loss) of every training event and (step, eval_loss, exact_match) of every evaluation.
struct Curve {
  std::vector<std::pair<int64_t, double>> train;
  std::vector<std::tuple<int64_t, double, double>> eval;
  bool operator==(const Curve& o) const { return train == o.train && eval == o.eval; }
};

Curve read_curve(const fs::path& metrics) {
  Curve c;
  for (const auto& e : read_jsonl(metrics)) {
    if (e["event"] == "train") c.train.emplace_back(e["step"].get<int64_t>(), e["loss"].get<double>());
    if (e["event"] == "eval") {
      c.eval.emplace_back(e["step"].get<int64_t>(), e["eval_loss"].get<double>(), e["exact_match"].get<double>());
    }
  }
  return c;
}

// Every published checkpoint folder verifies; returns how many there are.
int expect_all_checkpoints_valid(const fs::path& out) {
  int n = 0;
  for (const auto& c : qa::list_checkpoints(out.string())) {
    EXPECT_EQ(qa::verify_checkpoint(c.path), "") << c.path;
    ++n;
  }
  return n;
}

std::string file_crc(const fs::path& p) { return std::to_string(qa::crc32c_file(p.string()).crc); }

class FaultTolerance : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work = make_work_dir("qa-e2e-ft");
    RunResult r = qa_train(args("reference"), work);  // uninterrupted
    ASSERT_EQ(r.code, 0) << r.err;
    reference = read_curve(work / "reference/logs/metrics.jsonl");
    ASSERT_EQ(reference.train.size(), 40u);
  }
  static void TearDownTestSuite() { qa::remove_tree(work); }

  // 240 examples, micro-batches of 8, 2 per step: 15 steps per epoch; 40 steps cross two epoch ends.
  static std::string args(const std::string& out) {
    return "--config tiny.json --set data.train=train.jsonl --set data.validation=validation.jsonl"
           " --set train.log_every_steps=1 --set train.grad_accum_steps=2 --set output.save_every_steps=4"
           " --set output.dir=" + out;
  }
  static fs::path work;
  static Curve reference;
};
fs::path FaultTolerance::work;
Curve FaultTolerance::reference;

}  // namespace

TEST_F(FaultTolerance, StopThenResumeGivesTheSameLossAtEveryLaterStep) {
  // Step 7 stops mid-epoch (micro-batch 14 of 30); step 15 stops exactly at the end of epoch 0.
  for (int k : {7, 15}) {
    SCOPED_TRACE("stopped after step " + std::to_string(k));
    const std::string out = "stop-" + std::to_string(k);
    RunResult stop = qa_train(args(out), work, "QA_TRAIN_FAULT=after-step:" + std::to_string(k) + ":TERM");
    ASSERT_EQ(stop.code, 4) << stop.err;
    EXPECT_NE(stop.err.find("stopped by SIGTERM after step " + std::to_string(k)), std::string::npos) << stop.err;
    EXPECT_NE(stop.err.find("--resume auto"), std::string::npos) << stop.err;
    EXPECT_EQ(qa::verify_checkpoint(qa::checkpoint_path((work / out).string(), k)), "");
    RunResult resume = qa_train(args(out) + " --resume auto", work);
    ASSERT_EQ(resume.code, 0) << resume.err;
    EXPECT_NE(resume.err.find("resume: continuing from"), std::string::npos) << resume.err;
    EXPECT_EQ(read_curve(work / out / "logs/metrics.jsonl"), reference);  // bitwise, every step and evaluation
  }
}

TEST_F(FaultTolerance, EveryStopSignalWritesACheckpointAndExitsWithCode4) {
  for (const std::string sig : {"INT", "USR1"}) {
    RunResult r = qa_train(args("sig-" + sig), work, "QA_TRAIN_FAULT=after-step:5:" + sig);
    ASSERT_EQ(r.code, 4) << r.err;
    EXPECT_NE(r.err.find("stopped by SIG" + sig + " after step 5"), std::string::npos) << r.err;
    EXPECT_EQ(qa::verify_checkpoint(qa::checkpoint_path((work / ("sig-" + sig)).string(), 5)), "");
  }
  // A real SIGTERM from outside, as a scheduler sends it, while the run is training.
  const std::string cmd = "cd '" + work.string() + "' && ('" QA_TRAIN_BIN "' " + args("sig-ext") +
                          " --set train.max_steps=100000 >/dev/null 2>ext.err & pid=$!;"
                          " while kill -0 $pid 2>/dev/null && ! grep -q '\"step\":3,' sig-ext/logs/metrics.jsonl 2>/dev/null; do sleep 0.05; done;"
                          " kill -TERM $pid; wait $pid; echo $? > ext.code)";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const int code = read_code(work / "ext.code");
  EXPECT_EQ(code, 4);
  EXPECT_GE(expect_all_checkpoints_valid(work / "sig-ext"), 1);
}

TEST_F(FaultTolerance, ASecondInterruptExitsAtOnceAndTouchesNoCheckpoint) {
  // A model large enough that writing its checkpoint takes a while: the second SIGINT lands during
  // the step or the checkpoint that the first one asked for.
  const std::string big = args("twice") +
                          " --set model.d_model=256 --set model.d_ff=1024 --set model.num_layers=4"
                          " --set model.num_decoder_layers=4 --set model.num_heads=4 --set model.d_kv=64"
                          " --set output.save_every_steps=0 --set train.max_steps=1000 --set eval.every_steps=0";
  RunResult first = qa_train(big, work, "QA_TRAIN_FAULT=after-step:2:TERM");
  ASSERT_EQ(first.code, 4) << first.err;
  const std::string step2 = qa::checkpoint_path((work / "twice").string(), 2);
  const std::string manifest_before = file_crc(fs::path(step2) / "manifest.json");
  const std::string cmd = "cd '" + work.string() + "' && ('" QA_TRAIN_BIN "' " + big +
                          " --resume auto >/dev/null 2>twice.err & pid=$!;"
                          " while kill -0 $pid 2>/dev/null && ! grep -q '\"step\":3,' twice/logs/metrics.jsonl 2>/dev/null; do sleep 0.02; done;"
                          " kill -INT $pid; sleep 0.02; kill -INT $pid; wait $pid; echo $? > twice.code)";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const int code = read_code(work / "twice.code");
  EXPECT_EQ(code, 130);
  const std::string err = slurp(work / "twice.err");
  EXPECT_NE(err.find("second interrupt"), std::string::npos) << err;
  auto all = qa::list_checkpoints((work / "twice").string());
  ASSERT_EQ(all.size(), 1u);  // nothing new was published
  EXPECT_EQ(all[0].path, step2);
  EXPECT_EQ(qa::verify_checkpoint(step2), "");
  EXPECT_EQ(file_crc(fs::path(step2) / "manifest.json"), manifest_before);
}

TEST_F(FaultTolerance, KilledAtAnyMomentEveryCheckpointLoadsAndResumeFinishesTheSameRun) {
  const std::string out = "killed";
  // kill -9 at exact places (N-th time the point is reached in that process), several inside the
  // checkpoint writer, then at two arbitrary moments; after each, every published checkpoint verifies
  // and the next run resumes from the newest one.
  const std::vector<std::string> points = {"checkpoint-begin:1",         "checkpoint-after-model:1",
                                           "checkpoint-after-optimizer:2", "checkpoint-before-manifest:1",
                                           "checkpoint-before-publish:2",  "checkpoint-after-publish:1",
                                           "after-step:3"};
  int kills = 0;
  for (const auto& p : points) {
    SCOPED_TRACE(p);
    RunResult r = qa_train(args(out) + " --resume auto", work, "QA_TRAIN_FAULT=" + p);
    ASSERT_EQ(r.code, 128 + 9) << r.err;
    ++kills;
    expect_all_checkpoints_valid(work / out);
  }
  for (const char* delay : {"0.9", "1.3"}) {
    const std::string cmd = "cd '" + work.string() + "' && ('" QA_TRAIN_BIN "' " + args(out) +
                            " --resume auto >/dev/null 2>&1 & pid=$!; sleep " + delay + "; kill -9 $pid; wait $pid; true)";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    ++kills;
    expect_all_checkpoints_valid(work / out);
  }
  RunResult done = qa_train(args(out) + " --resume auto", work);
  ASSERT_EQ(done.code, 0) << done.err;
  EXPECT_EQ(read_curve(work / out / "logs/metrics.jsonl"), reference);
  EXPECT_GE(kills, 9);
  for (const auto& e : fs::directory_iterator(work / out / "checkpoints")) {  // staging folders were cleaned up
    EXPECT_EQ(e.path().filename().string().rfind(".step-", 0), std::string::npos) << e.path();
  }
}

TEST_F(FaultTolerance, ResumingWithAnotherArchitectureOrDatasetIsAnError) {
  RunResult stop = qa_train(args("changed"), work, "QA_TRAIN_FAULT=after-step:4:TERM");
  ASSERT_EQ(stop.code, 4) << stop.err;
  RunResult arch = qa_train(args("changed") + " --resume auto --set model.d_ff=48", work);
  EXPECT_EQ(arch.code, 2);
  EXPECT_NE(arch.err.find("another model architecture (d_ff 64 vs 48)"), std::string::npos) << arch.err;
  fs::copy_file(work / "train.jsonl", work / "train-changed.jsonl");
  std::ofstream(work / "train-changed.jsonl", std::ios::app)
      << R"({"question": "Who?", "context": "Ann.", "answer": "Ann"})" << "\n";
  RunResult data = qa_train(args("changed") + " --resume auto --set data.train=train-changed.jsonl", work);
  EXPECT_EQ(data.code, 2);
  EXPECT_NE(data.err.find("was saved with data.train"), std::string::npos) << data.err;
  RunResult order = qa_train(args("changed") + " --resume auto --set train.batch_size=4", work);
  EXPECT_EQ(order.code, 2);
  EXPECT_NE(order.err.find("global batch (train.batch_size x processes) = 8, this run has 4"), std::string::npos) << order.err;
}

TEST_F(FaultTolerance, AFreshRunDoesNotSilentlyReplaceAnEarlierRunsCheckpoints) {
  RunResult first = qa_train(args("again") + " --set train.max_steps=4", work);
  ASSERT_EQ(first.code, 0) << first.err;
  RunResult second = qa_train(args("again") + " --set train.max_steps=4", work);
  EXPECT_EQ(second.code, 2);
  EXPECT_NE(second.err.find("already holds checkpoints"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("--resume auto"), std::string::npos) << second.err;
  RunResult over = qa_train(args("again") + " --set train.max_steps=4 --set output.overwrite=true", work);
  EXPECT_EQ(over.code, 0) << over.err;
  std::ifstream log(work / "again/logs/train.log");
  std::stringstream ss;
  ss << log.rdbuf();
  EXPECT_NE(ss.str().find("GiB free"), std::string::npos);  // free space reported before training
}

TEST_F(FaultTolerance, AFailedWriteIsAClearErrorAndKeepsTheLastGoodCheckpointAndModel) {
  RunResult first = qa_train(args("full-disk") + " --set train.max_steps=8", work);
  ASSERT_EQ(first.code, 0) << first.err;
  const fs::path out = work / "full-disk";
  const std::string model_crc = file_crc(out / "model/model.safetensors");
  // A 40 KiB file-size limit (ulimit -f, as a quota or a full disk would): the next checkpoint
  // (a ~100 KB model file) cannot be written.
  const std::string cmd = "cd '" + work.string() + "' && (ulimit -f 40; '" QA_TRAIN_BIN "' " + args("full-disk") +
                          " --set train.max_steps=16 --resume auto >/dev/null 2>full.err; echo $? > full.code)";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const int code = read_code(work / "full.code");
  EXPECT_EQ(code, 1);
  const std::string err = slurp(work / "full.err");
  EXPECT_NE(err.find("qa-train: error: "), std::string::npos) << err;
  EXPECT_NE(err.find("File too large"), std::string::npos) << err;
  EXPECT_EQ(qa::verify_checkpoint(qa::checkpoint_path(out.string(), 8)), "");
  EXPECT_EQ(file_crc(out / "model/model.safetensors"), model_crc);
  for (const auto& e : fs::directory_iterator(out / "checkpoints")) {
    EXPECT_EQ(e.path().filename().string().rfind(".step-", 0), std::string::npos) << e.path();  // no partial folder
  }
}

TEST_F(FaultTolerance, NonFiniteStepsAreSkippedAndCountedThenTheRunStops) {
  // A learning rate of 1e30 sends the weights to infinity after the first update.
  RunResult r = qa_train(args("nan") + " --set train.learning_rate=1e30 --set train.max_grad_norm=0"
                                       " --set train.max_bad_steps=3 --set data.validation=", work);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("update skipped (1 so far)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("update skipped (3 so far)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("qa-train: error: training diverged: 3 consecutive steps with a non-finite loss or gradient"),
            std::string::npos)
      << r.err;
}

// The same on the GPU's step path (forced on CPU): skipped updates are counted on the device and
// reported, and max_bad_steps enforced, when a log line or checkpoint reads them (every step here).
TEST_F(FaultTolerance, OnTheDeviceStepPathNonFiniteStepsAreReportedWhenReadThenTheRunStops) {
  RunResult r = qa_train(args("nan-device") + " --set train.learning_rate=1e30 --set train.max_grad_norm=0"
                                              " --set train.max_bad_steps=3 --set data.validation=",
                         work, "QA_TRAIN_DEVICE_STEPS=1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("steps 2..2: 1 update(s) skipped for a non-finite loss or gradient norm (1 so far)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("(3 so far)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("qa-train: error: training diverged: 3 consecutive steps with a non-finite loss or gradient"),
            std::string::npos)
      << r.err;
}
