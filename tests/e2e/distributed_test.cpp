// End to end: data-parallel training with several qa-train processes on localhost (c10d, Gloo),
// launched with torchrun's environment variables.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>

#include "../support/free_port.hpp"
#include "cli_support.hpp"
#include "qa/io/safetensors_header.hpp"
#include "qa/train/checkpoint_store.hpp"
#include "qa/util/fs.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace qa::e2e;

namespace {

// Every F32 tensor of a model.safetensors, by name.
std::map<std::string, std::vector<float>> read_weights(const fs::path& path) {
  const std::string bytes = qa::read_file(path.string(), "weights");
  auto h = qa::parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), bytes.size(), path.string());
  std::map<std::string, std::vector<float>> out;
  for (const auto& e : h.tensors) {
    std::vector<float> v((e.end - e.begin) / 4);
    std::memcpy(v.data(), bytes.data() + h.data_start + e.begin, e.end - e.begin);
    out[e.name] = std::move(v);
  }
  return out;
}

// ||a - b|| / ||b|| over all parameters.
double relative_difference(const fs::path& a, const fs::path& b) {
  auto wa = read_weights(a), wb = read_weights(b);
  EXPECT_EQ(wa.size(), wb.size());
  double diff = 0, norm = 0;
  for (const auto& [name, vb] : wb) {
    const auto& va = wa[name];
    EXPECT_EQ(va.size(), vb.size()) << name;
    for (std::size_t i = 0; i < std::min(va.size(), vb.size()); ++i) {
      diff += (double(va[i]) - vb[i]) * (double(va[i]) - vb[i]);
      norm += double(vb[i]) * vb[i];
    }
  }
  return std::sqrt(diff / norm);
}

class Distributed : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work = make_work_dir("qa-e2e-dist");
  }
  static void TearDownTestSuite() { qa::remove_tree(work); }

  // Accumulation 2 on; 24 steps cross the end of an epoch (240 examples / 16 per step = 15 steps).
  static std::string args(const std::string& out, int batch) {
    return "--config tiny.json --set data.train=train.jsonl --set data.validation=validation.jsonl"
           " --set train.grad_accum_steps=2 --set train.max_steps=24 --set eval.every_steps=10"
           " --set train.log_every_steps=1 --set distributed.timeout_seconds=20 --set train.batch_size=" +
           std::to_string(batch) + " --set output.dir=" + out;
  }
  // Starts `world` ranks in the background (shell), waits for all; returns their exit codes.
  static std::vector<int> run_ranks(int world, const std::string& a, const std::string& env = "") {
    const int port = qa::test::free_port();
    std::string cmd = "cd '" + work.string() + "' && (";
    for (int r = 0; r < world; ++r) {
      cmd += "env " + env + " RANK=" + std::to_string(r) + " WORLD_SIZE=" + std::to_string(world) +
             " LOCAL_RANK=" + std::to_string(r) + " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " '" QA_TRAIN_BIN
             "' " + a + " >rank" + std::to_string(r) + ".out 2>rank" + std::to_string(r) + ".err & p" + std::to_string(r) + "=$!; ";
    }
    for (int r = 0; r < world; ++r) cmd += "wait $p" + std::to_string(r) + "; echo $? > rank" + std::to_string(r) + ".code; ";
    cmd += ")";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    std::vector<int> codes;
    for (int r = 0; r < world; ++r) codes.push_back(read_code(work / ("rank" + std::to_string(r) + ".code")));
    return codes;
  }
  static fs::path work;
};
fs::path Distributed::work;

}  // namespace

TEST_F(Distributed, TwoProcessesOfHalfTheBatchTrainTheSameModelAsOneProcess) {
  RunResult one = qa_train(args("one", 8), work);
  ASSERT_EQ(one.code, 0) << one.err;
  auto codes = run_ranks(2, args("two", 4));
  ASSERT_EQ(codes, (std::vector<int>{0, 0})) << slurp(work / "rank0.err") << slurp(work / "rank1.err");
  EXPECT_NE(slurp(work / "rank0.err").find("distributed: rank 0 of 2 (local rank 0), torchrun"), std::string::npos);
  EXPECT_NE(slurp(work / "rank0.err").find("gloo backend"), std::string::npos);
  EXPECT_LT(relative_difference(work / "two/model/model.safetensors", work / "one/model/model.safetensors"), 1e-5);
  EXPECT_LT(relative_difference(qa::checkpoint_path((work / "two").string(), 24) + "/model.safetensors",
                                qa::checkpoint_path((work / "one").string(), 24) + "/model.safetensors"),
            1e-5);
  // Only rank 0 writes: one metrics file, whose evaluations cover all 40 validation examples.
  auto events = read_jsonl(work / "two/logs/metrics.jsonl");
  int evals = 0;
  for (const auto& e : events) {
    if (e["event"] != "eval") continue;
    ++evals;
    if (e["step"] == 24) EXPECT_EQ(e["eval_examples"], 40);
  }
  EXPECT_EQ(evals, 3);  // steps 10, 20 and the end
}

TEST_F(Distributed, ACheckpointOfTwoProcessesResumesWithOne) {
  RunResult one = qa_train(args("ref-one", 8), work);
  ASSERT_EQ(one.code, 0) << one.err;
  auto codes = run_ranks(2, args("two-stop", 4), "QA_TRAIN_FAULT=after-step:7:TERM");
  ASSERT_EQ(codes, (std::vector<int>{4, 4})) << slurp(work / "rank0.err") << slurp(work / "rank1.err");
  EXPECT_EQ(qa::verify_checkpoint(qa::checkpoint_path((work / "two-stop").string(), 7)), "");
  // The same global batch (2 x 4 = 1 x 8): the run continues in one process.
  RunResult resume = qa_train(args("two-stop", 8) + " --resume auto", work);
  ASSERT_EQ(resume.code, 0) << resume.err;
  EXPECT_LT(relative_difference(work / "two-stop/model/model.safetensors", work / "ref-one/model/model.safetensors"), 1e-5);
  // Another global batch is refused: the data order would differ.
  RunResult other = qa_train(args("two-stop", 4) + " --resume auto --set train.max_steps=30", work);
  EXPECT_EQ(other.code, 2);
  EXPECT_NE(other.err.find("global batch (train.batch_size x processes) = 8, this run has 4"), std::string::npos) << other.err;
}

TEST_F(Distributed, ARankThatDiesStopsTheOthersWithinTheTimeout) {
  const int port = qa::test::free_port();
  const std::string a = args("died", 4) + " --set train.max_steps=100000 --set distributed.timeout_seconds=10";
  const auto t0 = std::chrono::steady_clock::now();
  const std::string cmd =
      "cd '" + work.string() + "' && (RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " '" QA_TRAIN_BIN
      "' " + a + " >died0.out 2>died0.err & p0=$!; RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) +
      " '" QA_TRAIN_BIN "' " + a + " >died1.out 2>died1.err & p1=$!;"
      " while kill -0 $p0 2>/dev/null && ! grep -q '\"step\":5,' died/logs/metrics.jsonl 2>/dev/null; do sleep 0.05; done;"
      " kill -9 $p1; wait $p0; echo $? > died0.code)";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int code = read_code(work / "died0.code");
  EXPECT_NE(code, 0);
  EXPECT_LT(seconds, 60.0);  // setup (~3 s), the timeout (10 s) and some slack; never a hang
  EXPECT_NE(slurp(work / "died0.err").find("qa-train: error: distributed"), std::string::npos) << slurp(work / "died0.err");
  for (const auto& c : qa::list_checkpoints((work / "died").string())) EXPECT_EQ(qa::verify_checkpoint(c.path), "") << c.path;
}

TEST_F(Distributed, ARankThatNeverJoinsIsATimeoutError) {
  const auto t0 = std::chrono::steady_clock::now();
  RunResult r = qa_train(args("alone", 4) + " --set distributed.timeout_seconds=3", work,
                         "RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(qa::test::free_port()));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("qa-train: error: distributed: not all 2 processes joined at 127.0.0.1:"), std::string::npos) << r.err;
  EXPECT_LT(seconds, 30.0);
}
