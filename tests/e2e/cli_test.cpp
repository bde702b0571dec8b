// End to end: the real qa-train binary trains on a tiny config, then evaluates and predicts with the
// model it saved; bad inputs fail with one clear line, a documented exit code and no output written.
#include "cli_support.hpp"
#include "qa/util/fs.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace qa::e2e;

namespace {

// Writes the fixture's three reference examples as JSONL; returns their reference loss over the file
// (the token-weighted mean of the per-example losses).
double write_reference_examples(const fs::path& path) {
  json ref = json::parse(std::ifstream(fs::path(QA_FIXTURES) / "hf-flan-tiny/reference.json"));
  std::ofstream data(path);
  double loss_sum = 0, tokens = 0;
  for (const auto& ex : ref["examples"]) {
    data << json{{"question", ex["question"]}, {"context", ex["context"]}, {"answer", ex["answer"]}}.dump() << "\n";
    loss_sum += ex["loss"].get<double>() * static_cast<double>(ex["labels"][0].size());
    tokens += static_cast<double>(ex["labels"][0].size());
  }
  return loss_sum / tokens;
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work = make_work_dir("qa-e2e");
  }
  static void TearDownTestSuite() { qa::remove_tree(work); }
  static std::string train_args(const std::string& out_dir) {
    return "--config tiny.json --set data.train=train.jsonl --set data.validation=validation.jsonl --set output.dir=" +
           out_dir;
  }
  // The training loss at each log line of a 15-step run of the tiny config into `dir` (3 lines).
  static std::vector<double> loss_sequence(const std::string& dir, const std::string& extra_args = "",
                                           const std::string& env = "") {
    RunResult r = qa_train(train_args(dir) + " --set train.max_steps=15 --set eval.every_steps=0 --set data.validation=" +
                               extra_args, work, env);
    EXPECT_EQ(r.code, 0) << r.err;
    std::vector<double> l;
    for (const auto& e : read_jsonl(work / dir / "logs/metrics.jsonl")) l.push_back(e["loss"].get<double>());
    return l;
  }
  static fs::path work;
};
fs::path Cli::work;

}  // namespace

TEST_F(Cli, TrainsThenEvaluatesAndPredictsWithTheSavedModel) {
  RunResult r = qa_train(train_args("out"), work);
  ASSERT_EQ(r.code, 0) << r.err;
  const fs::path out = work / "out";
  for (const char* f : {"model/config.json", "model/model.safetensors", "model/spiece.model", "logs/train.log",
                        "logs/metrics.jsonl", "logs/config.json", "logs/data_stats.json", "logs/predictions.jsonl",
                        "logs/report.html"}) {
    EXPECT_TRUE(fs::exists(out / f)) << f;
  }
  ASSERT_TRUE(fs::is_directory(out / "logs/tensorboard"));
  EXPECT_EQ(std::distance(fs::directory_iterator(out / "logs/tensorboard"), fs::directory_iterator{}), 1);
  RunResult report = qa_train("report out", work);  // rewrites the report from the logs
  ASSERT_EQ(report.code, 0) << report.err;
  EXPECT_EQ(last_line(report.out), "out/logs/report.html");
  // The effective config holds the overrides and the vocabulary size taken from the trained tokenizer.
  json effective = json::parse(std::ifstream(out / "logs/config.json"));
  EXPECT_EQ(effective["data"]["train"], (work / "train.jsonl").string());
  EXPECT_GT(effective["model"]["vocab_size"].get<int>(), 50);
  // The loss went down, and every event carries the documented fields.
  auto events = read_jsonl(out / "logs/metrics.jsonl");
  std::vector<double> losses;
  int evals = 0;
  for (const auto& e : events) {
    for (const char* k : {"step", "loss", "lr", "tokens_per_sec"}) EXPECT_TRUE(e.contains(k)) << e.dump();
    if (e["event"] == "train") losses.push_back(e["loss"].get<double>());
    if (e["event"] == "eval") {
      ++evals;
      for (const char* k : {"eval_loss", "exact_match", "f1"}) EXPECT_TRUE(e.contains(k)) << e.dump();
    }
  }
  ASSERT_GE(losses.size(), 4u);
  EXPECT_LT(losses.back(), losses.front() * 0.8) << "first " << losses.front() << " last " << losses.back();
  EXPECT_EQ(evals, 2);  // at step 20 and at the end (40)
  EXPECT_NE(r.err.find("done: 40 steps"), std::string::npos) << r.err;

  RunResult e = qa_train("eval --model out/model --data validation.jsonl --threads 1", work);
  ASSERT_EQ(e.code, 0) << e.err;
  json result = json::parse(last_line(e.out));
  EXPECT_EQ(result["examples"], 40);
  EXPECT_GT(result["loss"].get<double>(), 0.0);
  EXPECT_LT(result["loss"].get<double>(), losses.front());
  EXPECT_GE(result["exact_match"].get<double>(), 0.0);
  EXPECT_GE(result["f1"].get<double>(), result["exact_match"].get<double>());

  RunResult p = qa_train("predict --model out/model --data validation.jsonl --out preds.jsonl --max-new-tokens 6 --threads 1", work);
  ASSERT_EQ(p.code, 0) << p.err;
  auto preds = read_jsonl(work / "preds.jsonl");
  auto inputs = read_jsonl(work / "validation.jsonl");
  ASSERT_EQ(preds.size(), 40u);
  for (std::size_t i = 0; i < preds.size(); ++i) {
    EXPECT_EQ(preds[i]["id"], inputs[i]["id"]);
    EXPECT_EQ(preds[i]["question"], inputs[i]["question"]);
    EXPECT_TRUE(preds[i]["prediction"].is_string());
  }
}

TEST_F(Cli, SameSeedGivesTheSameLossSequence) {
  auto a = loss_sequence("seed-a"), b = loss_sequence("seed-b");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a, b);  // bitwise
}

TEST_F(Cli, ActivationCheckpointingLeavesTheLossSequenceUnchanged) {
  auto plain = loss_sequence("ckpt-off"), recomputed = loss_sequence("ckpt-on", " --set train.activation_checkpointing=true");
  ASSERT_EQ(plain.size(), 3u);
  ASSERT_EQ(recomputed.size(), plain.size());
  EXPECT_NE(slurp(work / "ckpt-on/logs/train.log").find("activation checkpointing"), std::string::npos);  // it was on
  for (std::size_t i = 0; i < plain.size(); ++i) EXPECT_NEAR(recomputed[i], plain[i], 1e-5 * plain[i]) << "log line " << i;
}

// The GPU's step (clip, skip and update decided on the device, statistics read at log lines), forced
// on CPU: the same loss at every log line as the host path.
TEST_F(Cli, TheDeviceStepPathGivesTheSameLossSequence) {
  auto host = loss_sequence("host-steps"), device = loss_sequence("device-steps", "", "QA_TRAIN_DEVICE_STEPS=1");
  ASSERT_EQ(host.size(), 3u);
  ASSERT_EQ(device.size(), host.size());
  for (std::size_t i = 0; i < host.size(); ++i) EXPECT_NEAR(device[i], host[i], 1e-4 * host[i]) << "log line " << i;
}

TEST_F(Cli, EvalReportsTheReferenceLossOfTheFixtureModel) {
  // The three reference examples of tests/fixtures/hf-flan-tiny: file loss = token-weighted mean.
  const double expected = write_reference_examples(work / "ref.jsonl");
  RunResult r = qa_train("eval --model '" + (fs::path(QA_FIXTURES) / "hf-flan-tiny").string() + "' --data ref.jsonl --max-new-tokens 8", work);
  ASSERT_EQ(r.code, 0) << r.err;
  json result = json::parse(last_line(r.out));
  EXPECT_NEAR(result["loss"].get<double>(), expected, 1e-5 * expected);
  EXPECT_EQ(result["examples"], 3);
}

TEST_F(Cli, PredictGivesTheReferenceGreedyAndBeamAnswers) {
  write_reference_examples(work / "pred.jsonl");
  json ref = json::parse(std::ifstream(fs::path(QA_FIXTURES) / "hf-flan-tiny/reference.json"));
  const std::string model = (fs::path(QA_FIXTURES) / "hf-flan-tiny").string();
  RunResult greedy = qa_train("predict --model '" + model + "' --data pred.jsonl --max-new-tokens 8 --out greedy.jsonl", work);
  ASSERT_EQ(greedy.code, 0) << greedy.err;
  auto lines = read_jsonl(work / "greedy.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(lines[i]["prediction"], ref["examples"][i]["greedy_text"][0]) << i;
  // Python sentencepiece's decoding of reference.json's beam3_ids (num_beams 3, 8 new tokens).
  const std::vector<std::string> beam_text = {"rinterinterinterinte", "rth inM cityndM city picture", "Br brownhd The t0"};
  RunResult beam = qa_train("predict --model '" + model + "' --data pred.jsonl --max-new-tokens 8 --num-beams 3 --out beam.jsonl", work);
  ASSERT_EQ(beam.code, 0) << beam.err;
  lines = read_jsonl(work / "beam.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(lines[i]["prediction"], beam_text[i]) << i;
}

TEST_F(Cli, FineTuningAPretrainedFolderStartsFromItsWeights) {
  // The first step's loss is computed before any update: on the reference examples it must be the
  // reference loss (token-weighted mean), which proves weights, tokenizer and data path line up.
  const double expected = write_reference_examples(work / "ft.jsonl");
  RunResult r = qa_train("--config tiny.json --set model.init_from='" + (fs::path(QA_FIXTURES) / "hf-flan-tiny").string() +
                             "' --set data.train=ft.jsonl --set data.validation= --set train.batch_size=3"
                             " --set train.max_steps=3 --set train.log_every_steps=1 --set output.dir=ft-out",
                         work);
  ASSERT_EQ(r.code, 0) << r.err;
  auto events = read_jsonl(work / "ft-out/logs/metrics.jsonl");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_NEAR(events[0]["loss"].get<double>(), expected, 1e-5 * expected);
  json saved = json::parse(std::ifstream(work / "ft-out/model/config.json"));
  EXPECT_EQ(saved["d_model"], 64);  // the folder's architecture, not tiny.json's
  RunResult both = qa_train(train_args("ft-missing") + " --set model.init_from=/nonexistent", work);
  EXPECT_EQ(both.code, 2);
  EXPECT_NE(both.err.find("model.init_from"), std::string::npos) << both.err;
}

// The fine-tuning recipes: without the model folder they say how to fetch it; with a folder (the
// fixture stands in for google/flan-t5-*) they train and export.
TEST_F(Cli, FlanT5RecipesExplainAMissingModelAndTrainFromAFolder) {
  for (const std::string size : {"small", "base"}) {
    const std::string recipe = (fs::path(QA_SOURCE_DIR) / ("configs/flan-t5-" + size + ".json")).string();
    RunResult missing = qa_train("--config '" + recipe + "' --set model.init_from=no-such-folder", work);
    EXPECT_EQ(missing.code, 2) << missing.err;
    EXPECT_NE(missing.err.find("huggingface-cli download google/flan-t5-small"), std::string::npos) << missing.err;
    RunResult r = qa_train("--config '" + recipe + "' --set model.init_from='" + (fs::path(QA_FIXTURES) / "hf-flan-tiny").string() +
                               "' --set data.train=train.jsonl --set data.validation="
                               " --set train.max_steps=2 --set runtime.threads=1 --set output.dir=recipe-" + size,
                           work);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(fs::exists(work / ("recipe-" + size) / "model/model.safetensors"));
  }
}

TEST_F(Cli, MalformedDataFailsWithFileAndLineAndWritesNothing) {
  fs::create_directories(work / "kept/model");
  std::ofstream(work / "kept/model/sentinel") << "earlier run";
  std::ofstream(work / "bad.jsonl") << "{\"question\": \"q\", \"context\": \"c\", \"answer\": \"a\"}\n{\"question\": 3}\n";
  RunResult r = qa_train(train_args("kept") + " --set data.train=bad.jsonl", work);
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("bad.jsonl:2: field 'question' must be a string, got an integer"), std::string::npos) << r.err;
  EXPECT_EQ(last_line(r.err).rfind("qa-train: error: ", 0), 0u) << r.err;  // the error is one line, the last
  EXPECT_TRUE(fs::exists(work / "kept/model/sentinel"));
  EXPECT_FALSE(fs::exists(work / "kept/logs"));
}

TEST_F(Cli, ConfigErrorsNameTheKeyAndExitWithUsageCode) {
  RunResult r = qa_train(train_args("cfg-err") + " --set train.learnig_rate=0.1", work);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("did you mean 'train.learning_rate'"), std::string::npos) << r.err;
  RunResult missing = qa_train("--config nonexistent.json", work);
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("nonexistent.json"), std::string::npos) << missing.err;
  RunResult unwritable = qa_train(train_args("/proc/qa-train-out"), work);
  EXPECT_EQ(unwritable.code, 1);
  EXPECT_NE(unwritable.err.find("/proc/qa-train-out"), std::string::npos) << unwritable.err;
}

TEST_F(Cli, HelpVersionAndConfigKeys) {
  EXPECT_EQ(qa_train("--help", work).code, 0);
  RunResult v = qa_train("--version", work);
  EXPECT_EQ(v.code, 0);
  EXPECT_NE(v.out.find("qa-train "), std::string::npos);
  RunResult k = qa_train("config --keys", work);
  EXPECT_EQ(k.code, 0);
  EXPECT_NE(k.out.find("train.learning_rate"), std::string::npos);
  // README's config reference is the schema's own table (scripts/update-readme-config.sh).
  RunResult md = qa_train("config --keys --markdown", work);
  std::ifstream readme(fs::path(QA_SOURCE_DIR) / "README.md");
  std::stringstream text;
  text << readme.rdbuf();
  EXPECT_NE(text.str().find(md.out), std::string::npos) << "README.md's config table is stale: run scripts/update-readme-config.sh";
  RunResult bad = qa_train("eval --model x", work);  // --data missing
  EXPECT_EQ(bad.code, 2);
}
