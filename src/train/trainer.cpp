#include "qa/train/trainer.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "qa/data/batch_prefetcher.hpp"
#include "qa/data/batch_sampler.hpp"
#include "qa/data/encoded_dataset.hpp"
#include "qa/data/jsonl_reader.hpp"
#include "qa/data/source_template.hpp"
#include "qa/eval/evaluator.hpp"
#include "qa/io/hf_model_dir.hpp"
#include "qa/log/logging.hpp"
#include "qa/log/metrics_log.hpp"
#include "qa/log/progress.hpp"
#include "qa/log/report.hpp"
#include "qa/log/tensorboard.hpp"
#include "qa/model/onednn_linear.hpp"
#include "qa/runtime/cuda_memory.hpp"
#include "qa/runtime/runtime.hpp"
#include "qa/runtime/fault_injection.hpp"
#include "qa/runtime/process_layout.hpp"
#include "qa/runtime/signals.hpp"
#include "qa/train/checkpoint.hpp"
#include "qa/train/checkpoint_store.hpp"
#include "qa/train/data_parallel.hpp"
#include "qa/train/device_step_window.hpp"
#include "qa/train/graphed_micro_steps.hpp"
#include "qa/train/gradient_sync.hpp"
#include "qa/train/lr_schedule.hpp"
#include "qa/train/optimizer.hpp"
#include "qa/train/train_step.hpp"
#include "qa/util/crc32c.hpp"
#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"
#include "qa/util/random.hpp"
#include "qa/util/strings.hpp"

namespace qa {
namespace {

// The model line's words for projection_products' answer (model/t5.hpp); nothing for LibTorch's own.
std::string projection_products_phrase(const std::string& path) {
  if (path == "onednn_bf16") return ", projections' products through oneDNN's bf16 gemm";
  if (path == "onednn") return ", projections' products through oneDNN";
  if (path == "onednn_except_short_forward") {
    return ", projections' products through oneDNN except forward ones of fewer than " +
           std::to_string(kOnednnTransposedForwardMinRows) + " rows";
  }
  return "";
}

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Everything a run reads, checked before anything is written.
struct Inputs {
  std::vector<QAExample> train, validation;
  Tokenizer tokenizer;
  T5Config model;
  T5Model pretrained{nullptr};  // set when model.init_from names a Hugging Face folder
};

Inputs read_inputs(const Config& cfg, int threads, const std::string& resume_dir) {
  auto train = read_qa_jsonl(cfg.data.train);
  std::vector<QAExample> validation;
  if (!cfg.data.validation.empty()) validation = read_qa_jsonl(cfg.data.validation);
  spdlog::info("data: {} training examples ({}), {} validation examples", train.size(), cfg.data.train,
               validation.size());

  if (!cfg.model.init_from.empty()) {
    if (!resume_dir.empty()) {
      // Resuming: the weights and tokenizer come from the checkpoint; the folder gives the architecture.
      auto arch = T5Config::from_hf_file((std::filesystem::path(cfg.model.init_from) / "config.json").string());
      return {std::move(train), std::move(validation), checkpoint_tokenizer(resume_dir), arch, nullptr};
    }
    // A pretrained folder brings its own architecture, weights and tokenizer.
    LoadedModel loaded = load_model_dir(cfg.model.init_from);
    spdlog::info("model: starting from {} (architecture, weights and tokenizer from the folder)", cfg.model.init_from);
    return {std::move(train), std::move(validation), std::move(loaded.tokenizer), loaded.config, loaded.model};
  }
  auto tokenizer = [&] {
    if (!resume_dir.empty()) return checkpoint_tokenizer(resume_dir);  // the one the run trained, not a new one
    if (!cfg.tokenizer.model.empty()) return Tokenizer::load(cfg.tokenizer.model);
    const auto t0 = Clock::now();
    // A seeded sample: SentencePiece's time grows with the text, its vocabulary hardly after ~50k.
    SplitMix64 rng(static_cast<uint64_t>(cfg.train.seed));
    const auto cap = static_cast<std::size_t>(cfg.tokenizer.max_training_examples);
    const auto order = sample_indices(train.size(), cap > 0 ? cap : train.size(), rng);
    std::vector<std::string> text;
    text.reserve(order.size() * 2);
    for (std::size_t i : order) {
      text.push_back(render_source(cfg.data.source_template, train[i].question, train[i].context));
      text.push_back(train[i].answers.front());
    }
    TokenizerTrainOptions opts;
    opts.vocab_size = cfg.tokenizer.vocab_size;
    opts.character_coverage = cfg.tokenizer.character_coverage;
    opts.num_threads = threads;
    opts.seed = static_cast<unsigned>(cfg.train.seed);
    auto tok = Tokenizer::train(text, opts);
    spdlog::info("tokenizer: trained a unigram model with {} pieces on {} texts in {:.1f}s", tok.vocab_size(),
                 text.size(), seconds_since(t0));
    return tok;
  }();

  T5Config model = cfg.model.t5;
  model.derive_activation(cfg.source);
  if (model.vocab_size == 0) {
    model.vocab_size = tokenizer.vocab_size();
  } else if (model.vocab_size < tokenizer.vocab_size()) {
    throw_config(cfg.source, "model.vocab_size",
                 std::to_string(model.vocab_size) + " is smaller than the tokenizer's " +
                     std::to_string(tokenizer.vocab_size()) + " pieces");
  }
  model.validate(cfg.source, "model.");
  return {std::move(train), std::move(validation), std::move(tokenizer), model, nullptr};
}

// What a resumed run must share with the checkpoint's run for "continue" to mean anything: the
// training data (checksum) and everything that decides the batch order and contents. The global batch
// (not the per-process one) matters: a checkpoint of 2 processes x 8 resumes as 1 process x 16.
RunIdentity run_identity(const Config& cfg, int64_t world_size) {
  const FileChecksum data = crc32c_file(cfg.data.train);
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x", data.crc);
  return {{"data.train (size and CRC-32C)", std::to_string(data.bytes) + " bytes, " + crc},
          {"train.seed", cfg.train.seed},
          {"global batch (train.batch_size x processes)", cfg.train.batch_size * world_size},
          {"train.grad_accum_steps", cfg.train.grad_accum_steps},
          {"data.group_by_length", cfg.data.group_by_length},
          {"data.max_source_length", cfg.data.max_source_length},
          {"data.max_target_length", cfg.data.max_target_length},
          {"data.source_template", cfg.data.source_template}};
}

// The checkpoint to resume from ("" = start fresh), decided before anything is read or written.
std::string resume_source(const Config& cfg) {
  const std::string& r = cfg.output.resume;
  if (r.empty()) {
    auto existing = list_checkpoints(cfg.output.dir);
    if (!existing.empty() && !cfg.output.overwrite) {
      throw Error(cfg.output.dir + " already holds checkpoints of an earlier run (newest: " + existing.front().path +
                      "): continue it with --resume auto, or start over with --set output.overwrite=true "
                      "(deletes them), or choose another output.dir",
                  ExitCode::kUsage);
    }
    return "";
  }
  if (r == "auto") {
    std::string found = find_resumable_checkpoint(cfg.output.dir);
    if (found.empty()) spdlog::info("resume: no valid checkpoint under {}: starting fresh", checkpoints_root(cfg.output.dir));
    return found;
  }
  if (!dir_exists(r)) throw_config(cfg.source, "output.resume", "checkpoint folder not found: " + r);
  if (auto problem = verify_checkpoint(r); !problem.empty()) {
    throw Error(r + ": not a valid checkpoint: " + problem, ExitCode::kBadInput);
  }
  return r;
}

void log_free_space(const std::string& dir) {
  std::error_code ec;
  auto space = std::filesystem::space(dir, ec);
  if (!ec) spdlog::info("output: {} ({:.1f} GiB free)", dir, static_cast<double>(space.available) / (1024.0 * 1024 * 1024));
}

void log_encoding(const char* name, const EncodingStats& s, const DataSection& d) {
  if (s.examples == 0) return;
  spdlog::info("{}: {} examples, source tokens mean {:.1f} max {} (truncated {} at {}), target tokens mean {:.1f} max {} "
               "(truncated {} at {})",
               name, s.examples, static_cast<double>(s.source_tokens) / s.examples, s.max_source_length,
               s.truncated_sources, d.max_source_length, static_cast<double>(s.target_tokens) / s.examples,
               s.max_target_length, s.truncated_targets, d.max_target_length);
  if (s.truncated_sources || s.truncated_targets) {
    spdlog::warn("{}: {} sources and {} targets were truncated (data.max_source_length / data.max_target_length)", name,
                 s.truncated_sources, s.truncated_targets);
  }
}

bool is_better(const std::string& metric, double candidate, double best) {
  if (std::isnan(candidate)) return false;
  if (std::isnan(best)) return true;
  return metric == "loss" ? candidate < best : candidate > best;
}

double metric_of(const std::string& metric, const EvalResult& r) {
  if (metric == "loss") return r.loss;
  if (metric == "f1") return r.f1;
  return r.exact_match;
}

Error diverged(int64_t bad_steps_in_a_row) {
  return Error("training diverged: " + std::to_string(bad_steps_in_a_row) +
               " consecutive steps with a non-finite loss or gradient; lower train.learning_rate");
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

// Data-parallel evaluation: rank r evaluates examples r, r + world, ... of the evaluated range; loss
// and scores are summed over ranks, so every rank gets the metrics of the whole range.
EvalResult sharded_evaluate(T5Model& model, const EncodedDataset& data, const std::vector<QAExample>& examples,
                            const Tokenizer& tokenizer, EvalOptions opts, const torch::Device& device, DataParallel& dp,
                            const ProcessLayout& layout) {
  std::size_t n = data.items.size();
  if (opts.max_examples > 0) n = std::min(n, opts.max_examples);
  EncodedDataset shard;
  std::vector<QAExample> shard_examples;
  for (std::size_t i = static_cast<std::size_t>(layout.rank); i < n; i += static_cast<std::size_t>(layout.world_size)) {
    shard.items.push_back(data.items[i]);
    shard_examples.push_back(examples[i]);
  }
  opts.max_examples = 0;
  EvalResult local;
  if (!shard.items.empty()) local = evaluate(model, shard, shard_examples, tokenizer, opts, device);
  const double count = static_cast<double>(shard.items.size());
  const double tokens = static_cast<double>(local.target_tokens);
  auto sums = torch::tensor({std::isfinite(local.loss) ? local.loss * tokens : 0.0, tokens,
                             std::isfinite(local.exact_match) ? local.exact_match * count : 0.0,
                             std::isfinite(local.f1) ? local.f1 * count : 0.0, count},
                            torch::kDouble)
                  .to(device);
  dp.all_reduce_sum(sums);
  auto s = sums.to(torch::kCPU);
  EvalResult r;
  r.examples = static_cast<std::size_t>(s[4].item<double>());
  r.target_tokens = static_cast<int64_t>(s[1].item<double>());
  if (r.target_tokens > 0) r.loss = s[0].item<double>() / s[1].item<double>();
  if (r.examples > 0) {
    r.exact_match = s[2].item<double>() / s[4].item<double>();
    r.f1 = s[3].item<double>() / s[4].item<double>();
  }
  r.seconds = local.seconds;
  return r;
}

TrainSummary train(const Config& cfg) {
  const auto run_start = Clock::now();
  const int threads = configure_threads(cfg.runtime.threads);
  const ProcessLayout layout = detect_process_layout(cfg.distributed.master_addr, cfg.distributed.master_port);
  const bool is_main = layout.is_main();  // only rank 0 writes logs, checkpoints and the model
  if (!is_main) spdlog::set_level(spdlog::level::warn);
  if (layout.distributed()) spdlog::info("distributed: {}", layout.describe());
  const std::string resume_dir = resume_source(cfg);
  Inputs in = read_inputs(cfg, threads, resume_dir);
  const RunIdentity identity = run_identity(cfg, layout.world_size);

  // Only now, with every input checked, touch the output folder.
  namespace fs = std::filesystem;
  const std::string out_dir = cfg.output.dir;
  const std::string logs_dir = (fs::path(out_dir) / "logs").string();
  const std::string model_dir = (fs::path(out_dir) / "model").string();
  const std::string metrics_path = (fs::path(logs_dir) / "metrics.jsonl").string();
  Config effective = cfg;
  effective.model.t5.vocab_size = in.model.vocab_size;
  if (is_main) {
    ensure_writable_dir(logs_dir, "output.dir");
    add_log_file((fs::path(logs_dir) / "train.log").string());
    log_free_space(out_dir);
    write_file_atomic((fs::path(logs_dir) / "config.json").string(), effective.to_json().dump(2) + "\n");
  }
  if (is_main && resume_dir.empty() && cfg.output.overwrite) {
    // Only on request: the checkpoints of an earlier run in this output folder.
    remove_tree(checkpoints_root(out_dir));
  }

  const std::string device_name = resolve_device(cfg.runtime.device);
  // One GPU per local rank.
  const torch::Device device = device_name == "cuda" ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(layout.local_rank))
                                                     : torch::Device(torch::kCPU);
  DataParallel dp;
  if (layout.distributed()) {
    dp = DataParallel(layout, device, cfg.distributed.timeout_seconds);
    spdlog::info("distributed: {} processes joined, {} backend", layout.world_size, dp.backend());
  }
  const bool bf16 = cfg.train.precision == "bf16";
  spdlog::info("runtime: {} on {}{}, {} intra-op threads, precision {}{}", torch_version(), device_name,
               cfg.runtime.device == "auto" && device_name == "cpu" ? " (auto: no CUDA device)" : "", threads,
               cfg.train.precision, blas_core_name().empty() ? "" : ", OpenBLAS kernel " + blas_core_name());
  if (auto hint = blas_hint(); !hint.empty() && !bf16) spdlog::warn("{}", hint);
  if (!device.is_cuda()) {
    if (const int own = own_kernel_threads(); own < threads) {
      spdlog::info("runtime: qa-train's own CPU kernels run on {} thread(s): this build's LibTorch does not use the "
                   "system's OpenMP runtime (see CMakeLists.txt)", own);
    }
  }
  if (device.is_cuda()) spdlog::info("cuda: {}", describe_cuda_device(device.index()));
  // Memory figures for metrics lines: RSS always, the CUDA allocator's on a GPU.
  const auto memory_fields = [&] {
    json j = {{"peak_rss_mb", peak_rss_mb()}};
    if (device.is_cuda()) j.update(cuda_memory_fields(device.index()));
    return j;
  };

  EncodeOptions enc{cfg.data.source_template, cfg.data.max_source_length, cfg.data.max_target_length,
                    static_cast<int32_t>(in.model.eos_token_id)};
  const EncodedDataset train_data = encode_dataset(in.train, in.tokenizer, enc);
  const EncodedDataset val_data = encode_dataset(in.validation, in.tokenizer, enc);
  log_encoding("train", train_data.stats, cfg.data);
  log_encoding("validation", val_data.stats, cfg.data);
  if (is_main) {  // for the report: sizes, truncations, answer lengths
    write_file_atomic((fs::path(logs_dir) / "data_stats.json").string(),
                      json{{"train", dataset_summary(train_data)}, {"validation", dataset_summary(val_data)}}.dump(2) + "\n");
  }

  T5Model model = in.pretrained ? in.pretrained : T5Model(in.model);
  if (!in.pretrained && resume_dir.empty()) model->init_weights(static_cast<uint64_t>(cfg.train.seed));
  model->to(device);
  model->train();
  model->set_activation_checkpointing(cfg.train.activation_checkpointing);
  if (cfg.train.activation_checkpointing) spdlog::info("model: activation checkpointing (each block recomputed in the backward pass)");
  // LibTorch's fused attention kernels on CUDA (LibTorch >= 2.1); on the CPU qa-train's fused pass in
  // fp32 (model/fused_attention) and explicit products in bf16.
  model->use_sdpa(device.is_cuda());
  int64_t n_params = 0;
  for (const auto& p : model->parameters()) n_params += p.numel();
  spdlog::info("model: T5 d_model {} d_ff {} ({}), {}+{} layers, {} heads x {}, vocab {}, {} parameters, attention {}{}",
               in.model.d_model, in.model.d_ff, in.model.feed_forward_proj, in.model.num_layers,
               in.model.num_decoder_layers, in.model.num_heads, in.model.d_kv, in.model.vocab_size, n_params,
               model->attention_path(cfg.train.batch_size, bf16),
               projection_products_phrase(projection_products(device, bf16)));
  Optimizer optimizer(model, cfg.train);
  // Dropout stream, independent of init; each rank its own (rank 0's equals a single process's).
  torch::manual_seed(static_cast<uint64_t>(cfg.train.seed) + 1 + static_cast<uint64_t>(layout.rank));

  TrainerState ts;
  if (!resume_dir.empty()) {
    ts = load_checkpoint(resume_dir, model, optimizer, identity);  // weights, moments, RNG, position
    // The checkpoint holds rank 0's generator; the others continue on their own seeded streams.
    if (!is_main) torch::manual_seed(static_cast<uint64_t>(cfg.train.seed) + 1 + static_cast<uint64_t>(layout.rank) + 7919u * static_cast<uint64_t>(ts.step));
    if (is_main) rewind_metrics_log(metrics_path, ts.step);
    spdlog::info("resume: continuing from {} (step {}, epoch {}, micro-batch {} of that epoch)", resume_dir, ts.step,
                 ts.epoch, ts.position);
  }
  std::unique_ptr<MetricsLog> metrics_file =
      is_main ? std::make_unique<MetricsLog>(metrics_path, /*append=*/!resume_dir.empty()) : std::make_unique<MetricsLog>();
  // TensorBoard scalars beside metrics.jsonl (rank 0): every event goes to both.
  std::unique_ptr<TensorBoardWriter> tensorboard;
  if (is_main) tensorboard = std::make_unique<TensorBoardWriter>(logs_dir, resume_dir.empty() ? -1 : ts.step);
  struct EventLog {
    MetricsLog& metrics;
    TensorBoardWriter* tb;
    void write(const json& e) {
      metrics.write(e);
      if (tb) tb->write(e);
    }
    void flush() {
      if (tb) tb->flush();
    }
  } metrics{*metrics_file, tensorboard.get()};  // not open on ranks other than 0: writes are no-ops
  // The report is a convenience: a failure to write it is a warning, never the run's failure.
  auto write_report_safely = [&] {
    if (!is_main) return;
    try {
      spdlog::info("report: {}", write_report(out_dir));
    } catch (const Error& e) {
      spdlog::warn("report not written: {}", e.what());
    }
  };
  dp.broadcast(optimizer.flat_parameters());  // every rank starts from rank 0's weights
  std::unique_ptr<GradientSync> grad_sync;
  if (dp.active()) {
    grad_sync = std::make_unique<GradientSync>(dp, model, optimizer.flat_gradients());
    spdlog::info("distributed: gradients summed in {} buckets during the backward pass", grad_sync->buckets());
  }

  // The sampler deals global batches (per-process batch x processes); each rank takes its share.
  const auto batch_size = static_cast<std::size_t>(cfg.train.batch_size * layout.world_size);
  const auto seed = static_cast<uint64_t>(cfg.train.seed);
  const BatchSampler sampler = [&] {
    if (!cfg.data.group_by_length) return BatchSampler(train_data.items.size(), batch_size, seed, /*shuffle=*/true);
    std::vector<std::size_t> lengths;
    for (const auto& e : train_data.items) lengths.push_back(e.source.size());
    return BatchSampler(std::move(lengths), batch_size, seed, /*group_batches=*/50);
  }();
  const int64_t accum = cfg.train.grad_accum_steps;
  const int64_t micro_per_epoch = static_cast<int64_t>(sampler.batches_per_epoch());
  const int64_t steps_per_epoch = (micro_per_epoch + accum - 1) / accum;  // an update never spans two epochs
  const int64_t total_steps = cfg.train.max_steps > 0 ? cfg.train.max_steps : steps_per_epoch * cfg.train.epochs;
  const LrSchedule schedule{cfg.train.learning_rate, cfg.train.warmup_steps, total_steps, cfg.train.lr_schedule,
                            cfg.train.min_lr_ratio};
  spdlog::info("training: {} steps ({} per epoch), batch {} x {} accumulation, lr {} {} with {} warmup steps",
               total_steps, steps_per_epoch, cfg.train.batch_size, accum, format_number(cfg.train.learning_rate),
               cfg.train.lr_schedule, cfg.train.warmup_steps);

  EvalOptions eval_opts;
  eval_opts.batch_size = cfg.eval.batch_size;
  eval_opts.max_new_tokens = cfg.eval.max_new_tokens;
  eval_opts.num_beams = cfg.eval.num_beams;
  eval_opts.bf16 = bf16;

  TrainSummary summary;
  summary.model_dir = model_dir;
  summary.best_step = std::max<int64_t>(ts.best_step, 0);
  summary.best_exact_match = ts.best_exact_match;
  summary.best_f1 = ts.best_f1;
  summary.best_eval_loss = ts.best_eval_loss;
  bool saved = ts.best_step >= 0 && dir_exists(model_dir);  // a resumed run's best model is already there
  ProgressBar progress(true);

  // The micro-batches of the optimizer step that starts at (epoch, position) — up to `accum` of one
  // epoch, as an update never spans two — and where the step after it starts. Pure, so that the next
  // step can be collated (BatchPrefetcher) while this one computes.
  struct StepPlan {
    int64_t epoch, next_position;
    MicroBatches shares;  // this rank's share of each global micro-batch
  };
  std::vector<std::pair<int64_t, std::vector<std::vector<std::size_t>>>> epoch_cache;  // the last two epochs
  auto batches_of = [&](int64_t epoch) -> const std::vector<std::vector<std::size_t>>& {
    for (const auto& [e, b] : epoch_cache) {
      if (e == epoch) return b;
    }
    if (epoch_cache.size() == 2) epoch_cache.erase(epoch_cache.begin());
    epoch_cache.emplace_back(epoch, sampler.epoch_batches(epoch));
    return epoch_cache.back().second;
  };
  auto plan_step = [&](int64_t epoch, int64_t position) {
    if (position >= static_cast<int64_t>(batches_of(epoch).size())) ++epoch, position = 0;
    const auto& batches = batches_of(epoch);
    StepPlan plan{epoch, position, {}};
    while (static_cast<int64_t>(plan.shares.size()) < accum && plan.next_position < static_cast<int64_t>(batches.size())) {
      plan.shares.push_back(rank_share(batches[static_cast<std::size_t>(plan.next_position++)], layout.rank, layout.world_size));
    }
    return plan;
  };
  BatchPrefetcher prefetcher(train_data, in.model.pad_token_id, in.model.decoder_start_token_id, device);
  const MicroStepSpec micro_step = make_micro_step_spec(in.model, device, bf16, cfg.train.answer_pointer_weight);
  std::unique_ptr<GraphedMicroSteps> graphs;
  if (cfg.train.cuda_graphs) {
    if (!device.is_cuda() || dp.active() || !CudaGraph::supported()) {
      spdlog::warn("train.cuda_graphs: ignored ({}); micro-batches run eagerly",
                   !device.is_cuda() ? "the device is not CUDA"
                   : dp.active()     ? "data parallelism runs several processes"
                                     : "this build's LibTorch has no CUDA graphs");
    } else {
      graphs = std::make_unique<GraphedMicroSteps>(model, micro_step);
      spdlog::info("train: CUDA graphs (micro-batches padded to multiples of 64 source / 16 target tokens)");
    }
  }
  // Since the last log line:
  double window_loss_sum = 0, window_tokens = 0, window_all_tokens = 0, window_padded_tokens = 0, window_flops = 0;
  // MFU: model FLOPs per second over the matrix-product peak of all the run's devices, measured here.
  const double device_peak = matmul_peak_flops(device.is_cuda() ? "cuda" : "cpu", bf16, device.is_cuda() ? 4096 : 1024);
  spdlog::info("runtime: matrix-product peak {:.1f} GFLOP/s ({}) on this device", device_peak / 1e9, bf16 ? "bf16" : "fp32");
  auto window_start = Clock::now();
  double last_loss = NAN, last_tokens_per_sec = 0, last_lr = 0, last_grad_norm = NAN;
  int64_t bad_steps_in_a_row = 0;
  int64_t last_checkpoint_step = resume_dir.empty() ? -1 : ts.step;

  // Returns true when this evaluation found a new best model (saved to model/).
  auto run_eval = [&](bool final_eval) {
    progress.clear();
    EvalOptions opts = eval_opts;
    if (!final_eval && cfg.eval.max_examples > 0) opts.max_examples = static_cast<std::size_t>(cfg.eval.max_examples);
    EvalResult r = dp.active() ? sharded_evaluate(model, val_data, in.validation, in.tokenizer, opts, device, dp, layout)
                               : evaluate(model, val_data, in.validation, in.tokenizer, opts, device);
    summary.evaluated = true;
    const double m = metric_of(cfg.eval.metric, r);
    const bool better = is_better(cfg.eval.metric, m, ts.best_metric);
    spdlog::info("eval step {}: loss {:.4f}, exact match {:.2f}, F1 {:.2f} on {} examples ({:.1f}s){}", ts.step, r.loss,
                 r.exact_match, r.f1, r.examples, r.seconds, better ? ", best so far" : "");
    json line = {{"event", "eval"}, {"step", ts.step}, {"epoch", ts.epoch}, {"loss", number_or_null(last_loss)},
                 {"lr", last_lr}, {"tokens_per_sec", last_tokens_per_sec}, {"eval_loss", number_or_null(r.loss)},
                 {"exact_match", number_or_null(r.exact_match)}, {"f1", number_or_null(r.f1)},
                 {"eval_examples", r.examples}, {"eval_seconds", r.seconds}};
    line.update(memory_fields());
    line["elapsed_sec"] = seconds_since(run_start);
    metrics.write(line);
    metrics.flush();  // a killed run keeps readable events up to its last evaluation
    if (is_main && !r.predictions.empty()) {  // a few answers next to the gold ones, for the report
      std::string lines;
      for (std::size_t i = 0; i < std::min<std::size_t>(r.predictions.size(), 20); ++i) {
        lines += json{{"step", ts.step}, {"question", in.validation[i].question}, {"prediction", r.predictions[i]},
                      {"answers", in.validation[i].answers}}.dump() + "\n";
      }
      write_file_atomic((fs::path(logs_dir) / "predictions.jsonl").string(), lines);
    }
    if (better) {
      ts.best_metric = m;
      ts.best_step = ts.step;
      ts.best_exact_match = r.exact_match;
      ts.best_f1 = r.f1;
      ts.best_eval_loss = r.loss;
      summary.best_step = ts.step;
      summary.best_exact_match = r.exact_match;
      summary.best_f1 = r.f1;
      summary.best_eval_loss = r.loss;
      if (is_main) save_model_dir(model_dir, model, in.tokenizer);
      saved = true;
    }
    return better;
  };

  // On a GPU (one process) a step never waits for the device: the loss, gradient norm and skipped
  // updates stay there until a log line or checkpoint reads them (DeviceStepWindow). Skipped updates
  // are then reported, and max_bad_steps enforced, at that read.
  // (QA_TRAIN_DEVICE_STEPS=1 takes this path on CPU too: test-only, so that CI covers it.)
  const char* force_device_steps = std::getenv("QA_TRAIN_DEVICE_STEPS");
  const bool on_device_steps =
      (device.is_cuda() || (force_device_steps && std::string(force_device_steps) == "1")) && !dp.active();
  DeviceStepWindow device_window;
  auto read_device_window = [&] {
    if (device_window.empty()) return;
    const DeviceStepWindow::Totals t = device_window.read();
    window_loss_sum += t.loss_sum;
    last_grad_norm = t.last_grad_norm;
    bad_steps_in_a_row = t.skipped_in_a_row;
    if (t.skipped == 0) return;
    ts.bad_steps += t.skipped;
    progress.clear();
    spdlog::warn("steps {}..{}: {} update(s) skipped for a non-finite loss or gradient norm ({} so far)",
                 ts.step - t.steps + 1, ts.step, t.skipped, ts.bad_steps);
    if (bad_steps_in_a_row >= cfg.train.max_bad_steps) throw diverged(bad_steps_in_a_row);
  };

  auto write_checkpoint = [&] {
    read_device_window();  // the checkpoint's count of skipped updates must be current
    last_checkpoint_step = ts.step;
    if (!is_main) return;
    progress.clear();
    const auto t0 = Clock::now();
    const std::string dir = save_checkpoint(out_dir, model, optimizer, in.tokenizer, ts, identity, effective.to_json());
    prune_checkpoints(out_dir, cfg.output.keep_last, ts.best_step);
    spdlog::info("checkpoint: {} ({:.1f}s)", dir, seconds_since(t0));
  };

  const auto train_start = Clock::now();
  bool out_of_time = false;
  if (ts.step >= total_steps) spdlog::info("resume: the run was already complete at step {}", ts.step);
  while (ts.step < total_steps && !out_of_time) {
    // One optimizer step: up to `accum` micro-batches of this epoch, loss normalised by their total
    // target tokens so that accumulation equals one large batch exactly.
    const StepPlan plan = plan_step(ts.epoch, ts.position);
    ts.epoch = plan.epoch;
    ts.position = plan.next_position;
    const std::vector<Batch> batches = prefetcher.take(plan.shares);
    if (ts.step + 1 < total_steps) prefetcher.prefetch(plan_step(ts.epoch, ts.position).shares);
    ++ts.step;
    // The loss is normalised by the target tokens of the global batch, so that the sum of the ranks'
    // gradients is the gradient of the whole batch.
    int64_t step_tokens = 0;
    for (const auto& b : batches) step_tokens += b.target_tokens;
    if (dp.active()) {
      auto t = torch::tensor({static_cast<double>(step_tokens)}, torch::kDouble).to(device);
      dp.all_reduce_sum(t);
      step_tokens = static_cast<int64_t>(t.item<double>());
    }
    const StepTotals totals = accumulate_gradients(
        model, batches, micro_step, step_tokens, [&] {
          if (grad_sync) grad_sync->arm();
        },
        graphs.get());
    double step_loss_sum = 0, step_source_tokens = static_cast<double>(totals.source_tokens),
           step_padded = static_cast<double>(totals.padded_tokens), step_flops = totals.flops;
    if (dp.active()) {
      grad_sync->finish();  // most buckets were summed while the backward pass ran
      auto stats = torch::stack({totals.loss_sum.to(torch::kDouble), torch::tensor(step_source_tokens, torch::kDouble).to(device),
                                 torch::tensor(step_padded, torch::kDouble).to(device),
                                 torch::tensor(step_flops, torch::kDouble).to(device)});
      dp.all_reduce_sum(stats);
      auto cpu = stats.to(torch::kCPU);
      step_loss_sum = cpu[0].item<double>();
      step_source_tokens = cpu[1].item<double>();
      step_padded = cpu[2].item<double>();
      step_flops = cpu[3].item<double>();
    } else if (!on_device_steps) {
      step_loss_sum = totals.loss_sum.item<double>();
    }
    const double all_tokens = step_source_tokens + static_cast<double>(step_tokens);
    const double lr = schedule.at(ts.step);
    double step_loss = NAN;
    if (on_device_steps) {
      // Clip, skip-if-non-finite and update all decided on the GPU; read back at log steps.
      auto r = optimizer.clip_and_step_on_device(cfg.train.max_grad_norm, lr, totals.loss_sum);
      device_window.add(totals.loss_sum, r.grad_norm, r.skipped);
    } else {
      const double grad_norm = optimizer.clip_grad_norm(cfg.train.max_grad_norm);
      step_loss = step_loss_sum / static_cast<double>(step_tokens);
      last_grad_norm = grad_norm;
      if (!std::isfinite(step_loss) || !std::isfinite(grad_norm)) {
        // Skip the update rather than poison the weights; give up if it keeps happening.
        ++ts.bad_steps;
        ++bad_steps_in_a_row;
        progress.clear();
        spdlog::warn("step {}: non-finite loss or gradient norm (loss {}, grad norm {}); update skipped ({} so far)",
                     ts.step, step_loss, grad_norm, ts.bad_steps);
        if (bad_steps_in_a_row >= cfg.train.max_bad_steps) throw diverged(bad_steps_in_a_row);
      } else {
        bad_steps_in_a_row = 0;
        optimizer.step(lr);
      }
    }
    optimizer.zero_grad();

    if (!on_device_steps) window_loss_sum += step_loss_sum;
    window_tokens += static_cast<double>(step_tokens);
    window_all_tokens += all_tokens;
    window_padded_tokens += step_padded;
    window_flops += step_flops;
    last_lr = lr;
    const double elapsed = seconds_since(train_start);
    out_of_time = cfg.train.max_time_minutes > 0 && seconds_since(run_start) >= cfg.train.max_time_minutes * 60;
    if (dp.active()) {  // the ranks' clocks differ: stop together when any of them is out of time
      auto t = torch::tensor({out_of_time ? 1.0 : 0.0}, torch::kDouble).to(device);
      dp.all_reduce_max(t);
      out_of_time = t.item<double>() > 0;
    }
    const bool last = ts.step == total_steps || out_of_time;
    if (ts.step % cfg.train.log_every_steps == 0 || last) {
      read_device_window();
      const double window_sec = seconds_since(window_start);
      last_loss = window_loss_sum / window_tokens;
      last_tokens_per_sec = window_all_tokens / std::max(window_sec, 1e-9);
      json line = {{"event", "train"}, {"step", ts.step}, {"epoch", ts.epoch}, {"loss", last_loss}, {"lr", lr},
                   {"grad_norm", number_or_null(last_grad_norm)}, {"tokens_per_sec", last_tokens_per_sec},
                   {"padding_fraction", 1.0 - window_all_tokens / std::max(window_padded_tokens, 1.0)},
                   {"mfu", window_flops / std::max(window_sec, 1e-9) / (device_peak * static_cast<double>(layout.world_size))}};
      line.update(memory_fields());
      line["elapsed_sec"] = seconds_since(run_start);
      metrics.write(line);
      if (!progress.active()) {
        spdlog::info("step {}/{} epoch {} loss {:.4f} lr {:.3e} grad norm {:.3f} {:.0f} tok/s", ts.step, total_steps,
                     ts.epoch, last_loss, lr, last_grad_norm, last_tokens_per_sec);
      }
      window_loss_sum = window_tokens = window_all_tokens = window_padded_tokens = window_flops = 0;
      window_start = Clock::now();
    }
    progress.update({ts.step, total_steps, std::isnan(last_loss) ? step_loss : last_loss, lr, last_tokens_per_sec, elapsed});
    fault_point("after-step");

    bool new_best = false;
    if (!val_data.items.empty()) {
      if (last) {
        new_best = run_eval(true);
      } else if (cfg.eval.every_steps > 0 && ts.step % cfg.eval.every_steps == 0) {
        new_best = run_eval(false);
      }
    }
    int stop = stop_signal();
    if (dp.active()) {  // a signal reaches the ranks at different moments: stop together, at this step
      auto t = torch::tensor({static_cast<double>(stop)}, torch::kDouble).to(device);
      dp.all_reduce_max(t);
      stop = static_cast<int>(t.item<double>());
    }
    const bool periodic = cfg.output.save_every_steps > 0 && ts.step % cfg.output.save_every_steps == 0;
    if (periodic || new_best || last || stop) write_checkpoint();
    if (stop) {
      progress.finish();
      const std::string where = checkpoint_path(out_dir, ts.step);
      spdlog::info("stopped by {} after step {}: checkpoint {}", signal_name(stop), ts.step, where);
      metrics.flush();
      write_report_safely();
      close_log_file();
      throw Error(std::string("stopped by ") + signal_name(stop) + " after step " + std::to_string(ts.step) +
                      "; checkpoint " + where + "; continue with --resume auto",
                  ExitCode::kStopped);
    }
  }
  progress.finish();
  if (out_of_time) spdlog::info("train.max_time_minutes ({}) reached at step {}", format_number(cfg.train.max_time_minutes), ts.step);
  summary.steps = ts.step;
  summary.final_train_loss = last_loss;
  if (!saved && is_main) save_model_dir(model_dir, model, in.tokenizer);  // no validation data, or no finite metric
  if (last_checkpoint_step != ts.step) write_checkpoint();
  metrics.flush();
  write_report_safely();
  summary.seconds = seconds_since(run_start);
  if (ts.bad_steps) spdlog::warn("{} updates were skipped for non-finite values", ts.bad_steps);
  if (summary.evaluated || ts.best_step >= 0) {
    spdlog::info("done: {} steps in {}; best exact match {:.2f}, F1 {:.2f} (step {}, by {}); model: {}", ts.step,
                 format_duration(summary.seconds), summary.best_exact_match, summary.best_f1, summary.best_step,
                 cfg.eval.metric, model_dir);
  } else {
    spdlog::info("done: {} steps in {}; final training loss {:.4f}; model: {}", ts.step, format_duration(summary.seconds),
                 last_loss, model_dir);
  }
  close_log_file();
  return summary;
}

}  // namespace qa
