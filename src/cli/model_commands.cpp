#include "qa/cli/model_commands.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "qa/data/encoded_dataset.hpp"
#include "qa/data/jsonl_reader.hpp"
#include "qa/eval/evaluator.hpp"
#include "qa/io/hf_model_dir.hpp"
#include "qa/runtime/runtime.hpp"
#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"

namespace qa {
namespace {

using json = nlohmann::json;

struct Prepared {
  LoadedModel loaded;
  std::vector<QAExample> examples;
  EncodedDataset data;
  torch::Device device{torch::kCPU};
};

Prepared prepare(const ModelRunOptions& o) {
  const int threads = configure_threads(o.threads);
  auto examples = read_qa_jsonl(o.data);  // input errors first, before the (slower) model load
  Prepared p{load_model_dir(o.model_dir), std::move(examples), {}, torch::Device(resolve_device(o.device))};
  const auto& c = p.loaded.config;
  EncodeOptions enc{o.source_template, o.max_source_length, o.max_target_length, static_cast<int32_t>(c.eos_token_id)};
  p.data = encode_dataset(p.examples, p.loaded.tokenizer, enc);
  p.loaded.model->to(p.device);
  p.loaded.model->use_sdpa(p.device.is_cuda());
  spdlog::info("{} examples from {}; model {} ({} on {}, {} threads)", p.examples.size(), o.data, o.model_dir,
               torch_version(), p.device.str(), threads);
  if (p.data.stats.truncated_sources) {
    spdlog::warn("{} sources truncated to {} tokens (--max-source-length)", p.data.stats.truncated_sources,
                 o.max_source_length);
  }
  return p;
}

EvalOptions eval_options(const ModelRunOptions& o, bool loss) {
  EvalOptions e;
  e.batch_size = o.batch_size;
  e.max_new_tokens = o.max_new_tokens;
  e.num_beams = o.num_beams;
  e.bf16 = o.precision == "bf16";
  e.compute_loss = loss;
  return e;
}

}  // namespace

json run_eval(const ModelRunOptions& o) {
  Prepared p = prepare(o);
  EvalResult r = evaluate(p.loaded.model, p.data, p.examples, p.loaded.tokenizer, eval_options(o, true), p.device);
  return {{"loss", r.loss},
          {"exact_match", r.exact_match},
          {"f1", r.f1},
          {"examples", r.examples},
          {"target_tokens", r.target_tokens},
          {"truncated_sources", p.data.stats.truncated_sources},
          {"truncated_targets", p.data.stats.truncated_targets},
          {"seconds", r.seconds}};
}

std::size_t run_predict(const ModelRunOptions& o, const std::string& out_path) {
  Prepared p = prepare(o);
  EvalResult r = evaluate(p.loaded.model, p.data, p.examples, p.loaded.tokenizer, eval_options(o, false), p.device);
  std::string out;
  for (std::size_t i = 0; i < p.examples.size(); ++i) {
    json line = json::object();
    if (!p.examples[i].id.empty()) line["id"] = p.examples[i].id;
    line["question"] = p.examples[i].question;
    line["prediction"] = r.predictions[i];
    out += line.dump() + "\n";
  }
  write_file_atomic(out_path, out);
  spdlog::info("wrote {} predictions to {} ({:.1f}s)", p.examples.size(), out_path, r.seconds);
  return p.examples.size();
}

}  // namespace qa
