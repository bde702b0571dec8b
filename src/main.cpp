// qa-train: the command line. Parses arguments and hands over to the trainer or the model commands.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "qa/build_info.hpp"
#include "qa/cli/bench_command.hpp"
#include "qa/cli/model_commands.hpp"
#include "qa/log/report.hpp"
#include "qa/config/config.hpp"
#include "qa/config/schema.hpp"
#include "qa/log/logging.hpp"
#include "qa/train/trainer.hpp"
#include "qa/runtime/host_memory.hpp"
#include "qa/runtime/signals.hpp"
#include "qa/util/error.hpp"

namespace {

struct TrainArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string device;
  std::string resume;
};

void add_train_options(CLI::App& app, TrainArgs& a) {
  app.add_option("-c,--config", a.config, "Config file (JSON); default: the built-in demo config (configs/demo.json)");
  app.add_option("-s,--set", a.overrides, "Override a config key: section.key=value (repeatable)")->take_all();
  app.add_option("--device", a.device, "Shortcut for --set runtime.device=auto|cpu|cuda");
  app.add_option("--resume", a.resume,
                 "auto (the newest valid checkpoint under <output>/checkpoints; none: start fresh) or a checkpoint "
                 "folder; shortcut for --set output.resume=...");
}

qa::Config load_config(const TrainArgs& a) {
  const std::string cwd = std::filesystem::current_path().string();
  // The built-in copy of configs/demo.json resolves its paths as if it were ./configs/demo.json.
  qa::Config cfg = a.config.empty()
                       ? qa::Config::from_json_text(qa::build_info::kDemoConfig, "<built-in demo config>", cwd + "/configs")
                       : qa::Config::load_file(a.config);
  for (const auto& o : a.overrides) cfg.apply_override(o, cwd);
  if (!a.device.empty()) cfg.apply_override("runtime.device=" + a.device, cwd);
  if (!a.resume.empty()) cfg.apply_override("output.resume=" + a.resume, cwd);
  return cfg;
}

void add_model_options(CLI::App& app, qa::ModelRunOptions& o) {
  app.add_option("-m,--model", o.model_dir, "Model folder (Hugging Face layout: config.json, model.safetensors, spiece.model)")
      ->required();
  app.add_option("-d,--data", o.data, "JSONL file of questions")->required();
  app.add_option("--batch-size", o.batch_size, "Examples per batch")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-new-tokens", o.max_new_tokens, "Longest generated answer (tokens, EOS included)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--num-beams", o.num_beams, "Beam search width (1 = greedy)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{64}));
  app.add_option("--max-source-length", o.max_source_length, "Source tokens kept (EOS included)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  app.add_option("--template", o.source_template, "Encoder input template")->capture_default_str();
  app.add_option("--device", o.device, "auto | cpu | cuda")->capture_default_str()->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--precision", o.precision, "fp32 | bf16")->capture_default_str()->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--threads", o.threads, "Intra-op CPU threads (0 = all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
}

int fail(const std::string& message, qa::ExitCode code) {
  std::fflush(stdout);
  std::fprintf(stderr, "qa-train: error: %s\n", message.c_str());
  return static_cast<int>(code);
}

}  // namespace

int main(int argc, char** argv) {
  qa::route_stop_signals_to_one_thread();  // before any thread starts (runtime/signals)
  // Before anything large is allocated: a step's temporaries then reuse their pages (runtime/host_memory).
  qa::keep_freed_host_memory();
  CLI::App app{"qa-train: fine-tune T5 / Flan-T5 encoder-decoders for question answering (LibTorch)", "qa-train"};
  app.set_version_flag("--version", std::string("qa-train ") + qa::build_info::kVersion);
  app.require_subcommand(0, 1);
  std::string log_level;
  app.add_option("--log-level", log_level, "debug | info | warn | error (default: runtime.log_level)")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  TrainArgs train_args;
  add_train_options(app, train_args);
  TrainArgs sub_train_args;
  auto* train_cmd = app.add_subcommand("train", "Fine-tune (the default when no command is given)");
  add_train_options(*train_cmd, sub_train_args);

  qa::ModelRunOptions eval_opts;
  auto* eval_cmd = app.add_subcommand("eval", "Evaluate a saved model: prints one JSON line with loss, exact_match, f1");
  add_model_options(*eval_cmd, eval_opts);

  qa::ModelRunOptions predict_opts;
  std::string predict_out;
  auto* predict_cmd = app.add_subcommand("predict", "Answer every question of a JSONL file with a saved model");
  add_model_options(*predict_cmd, predict_opts);
  predict_cmd->add_option("-o,--out", predict_out, "Output JSONL file")->required();

  qa::BenchOptions bench_opts;
  bool bench_json = false;
  auto* bench_cmd = app.add_subcommand("bench", "Time training steps and generation of a T5 shape on random tokens");
  bench_cmd->add_option("--shape", bench_opts.shape, "flan-t5-small | flan-t5-base | demo")->capture_default_str()
      ->check(CLI::IsMember({"flan-t5-small", "flan-t5-base", "demo"}));
  bench_cmd->add_option("--batch", bench_opts.batch, "Sequences per step")->capture_default_str()->check(CLI::PositiveNumber);
  bench_cmd->add_option("--src-len", bench_opts.src_len, "Source tokens per sequence")->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 16));
  bench_cmd->add_option("--tgt-len", bench_opts.tgt_len, "Target tokens per sequence")->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 16));
  bench_cmd->add_option("--steps", bench_opts.steps, "Timed steps (after one warm-up)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--device", bench_opts.device, "cpu | cuda | auto")->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  bench_cmd->add_option("--precision", bench_opts.precision, "fp32 | bf16")->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
  bench_cmd->add_option("--threads", bench_opts.threads, "Intra-op CPU threads (0 = all cores)")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  bench_cmd->add_flag("--json", bench_json, "Print one JSON object as the last stdout line");
  bench_cmd->add_flag("--activation-checkpointing", bench_opts.activation_checkpointing,
                      "Recompute each block's activations in the backward pass (less memory, more compute)");
  bench_cmd->add_flag("--cuda-graphs", bench_opts.cuda_graphs,
                      "Replay each step's forward and backward pass from a recorded CUDA graph (train.cuda_graphs)");
  bench_cmd->add_option("--attention", bench_opts.attention,
                        "auto (fused kernels on CUDA, qa-train's fused pass on the CPU), fused (LibTorch's, needs >= 2.1), explicit")
      ->capture_default_str()->check(CLI::IsMember({"auto", "fused", "explicit"}));
  bench_cmd->add_option("--stacked-projections", bench_opts.stacked_projections,
                        "q/k/v and wi_0/wi_1 as one product each: auto (CUDA training), on, off")
      ->capture_default_str()->check(CLI::IsMember({"auto", "on", "off"}));
  bench_cmd->add_option("--cpu-gemm", bench_opts.cpu_gemm,
                        "CPU training's projections: auto (fp32: backward products and forward ones of >= 1024 rows through oneDNN's sgemm where LibTorch links it, all forward ones too where the BLAS runs a generic kernel; bf16: every product through oneDNN's bf16 gemm where it runs), blas (LibTorch's products only, autocast's in bf16)")
      ->capture_default_str()->check(CLI::IsMember({"auto", "blas"}));
  bench_cmd->add_option("--profile", bench_opts.profile_rows,
                        "Profile one more step and print its N most expensive ops by self time, on CUDA its kernels by GPU time (stderr)")
      ->check(CLI::NonNegativeNumber);

  std::string report_dir;
  auto* report_cmd = app.add_subcommand("report", "Write OUTPUT_DIR/logs/report.html from a run's logs (also a stopped one)");
  report_cmd->add_option("output_dir", report_dir, "The run's output folder (output.dir)")->required();

  TrainArgs config_args;
  bool list_keys = false;
  auto* config_cmd = app.add_subcommand("config", "Print the effective config (after --set), or every key with --keys");
  add_train_options(*config_cmd, config_args);
  config_cmd->add_flag("--keys", list_keys, "List every config key with its type and meaning");
  bool markdown = false;
  config_cmd->add_flag("--markdown", markdown, "With --keys: a Markdown table (the one in README.md)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(std::string(e.what()) + " (see qa-train --help)", qa::ExitCode::kUsage);
  }

  try {
    if (*config_cmd) {
      if (list_keys) {
        const qa::Config defaults;
        if (markdown) std::printf("| key | default | accepted | meaning |\n| --- | --- | --- | --- |\n");
        for (const auto& s : qa::config_schema()) {
          const std::string value = s.get(defaults).dump();
          if (markdown) {
            std::printf("| `%s` | `%s` | %s | %s |\n", s.key.c_str(), value.c_str(), qa::describe_kind(s).c_str(),
                        s.doc.c_str());
          } else {
            std::printf("%-40s %-12s %-32s %s\n", s.key.c_str(), value.c_str(), qa::describe_kind(s).c_str(),
                        s.doc.c_str());
          }
        }
        return 0;
      }
      qa::Config cfg = load_config(config_args);
      std::printf("%s\n", cfg.to_json().dump(2).c_str());
      return 0;
    }
    if (*report_cmd) {
      std::printf("%s\n", qa::write_report(report_dir).c_str());
      return 0;
    }
    if (*bench_cmd) {
      qa::init_logging(log_level.empty() ? "info" : log_level);
      auto r = qa::run_bench(bench_opts);
      if (bench_opts.profile_rows > 0) std::fprintf(stderr, "%s", r["profile_table"].get<std::string>().c_str());
      if (bench_json) {
        std::printf("%s\n", r.dump().c_str());
      } else {
        std::printf("%s %s %s batch %lld src %lld tgt %lld: %.1f ms/step, %.0f tokens/s, MFU %.1f%% (%.3f of %.3f TFLOP/s), "
                    "generation %.0f tokens/s, peak memory %.0f MB%s\n",
                    r["shape"].get<std::string>().c_str(), r["device"].get<std::string>().c_str(),
                    r["precision"].get<std::string>().c_str(), static_cast<long long>(bench_opts.batch),
                    static_cast<long long>(bench_opts.src_len), static_cast<long long>(bench_opts.tgt_len),
                    r["ms_per_step"].get<double>(), r["tokens_per_sec"].get<double>(), 100 * r["mfu"].get<double>(),
                    r["step_tflops"].get<double>(), r["peak_tflops"].get<double>(), r["gen_tokens_per_sec"].get<double>(),
                    r["peak_mem_mb"].get<double>(),
                    bench_opts.activation_checkpointing ? " (activation checkpointing)"
                    : bench_opts.cuda_graphs            ? " (CUDA graphs)"
                                                        : "");
      }
      return 0;
    }
    if (*eval_cmd || *predict_cmd) {
      qa::init_logging(log_level.empty() ? "info" : log_level);
      if (*eval_cmd) {
        auto result = qa::run_eval(eval_opts);
        std::printf("%s\n", result.dump().c_str());
      } else {
        qa::run_predict(predict_opts, predict_out);
      }
      return 0;
    }
    qa::Config cfg = load_config(*train_cmd ? sub_train_args : train_args);
    cfg.validate();
    qa::init_logging(log_level.empty() ? cfg.runtime.log_level : log_level);
    spdlog::info("qa-train {}: config {}", qa::build_info::kVersion, cfg.source);
    qa::install_stop_signal_handlers();
    qa::train(cfg);
    return 0;
  } catch (const qa::Error& e) {
    if (e.code() == qa::ExitCode::kStopped) {  // a requested stop, not a failure: the message says how to resume
      std::fflush(stdout);
      std::fprintf(stderr, "qa-train: %s\n", e.what());
      return static_cast<int>(e.code());
    }
    qa::log_error_to_file(e.what());
    return fail(e.what(), e.code());
  } catch (const std::exception& e) {
    qa::log_error_to_file(e.what());
    return fail(std::string("internal error: ") + e.what(), qa::ExitCode::kFailure);
  }
}
