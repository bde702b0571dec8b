#include "qa/train/checkpoint.hpp"

#include <filesystem>
#include <map>

#include <spdlog/spdlog.h>

#include "qa/io/hf_model_dir.hpp"
#include "qa/io/safetensors.hpp"
#include "qa/runtime/fault_injection.hpp"
#include "qa/train/checkpoint_store.hpp"
#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"
#include "qa/util/json_text.hpp"

namespace qa {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string to_hex(const torch::Tensor& bytes) {
  static const char* digits = "0123456789abcdef";
  auto b = bytes.contiguous().to(torch::kCPU);
  const auto* p = b.data_ptr<uint8_t>();
  std::string out;
  out.reserve(static_cast<std::size_t>(b.numel()) * 2);
  for (int64_t i = 0; i < b.numel(); ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

torch::Tensor from_hex(const std::string& hex, const std::string& source) {
  if (hex.size() % 2) throw_bad_file(source, "odd-length generator state");
  auto out = torch::empty({static_cast<int64_t>(hex.size() / 2)}, torch::kByte);
  auto* p = out.data_ptr<uint8_t>();
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw_bad_file(source, "generator state is not hexadecimal");
  };
  for (std::size_t i = 0; i < hex.size() / 2; ++i) p[i] = static_cast<uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  return out;
}

// The default generators: CPU (dropout on CPU, init) and one per CUDA device.
json rng_states() {
  json j = {{"cpu", ""}, {"cuda", json::array()}};
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    j["cpu"] = to_hex(gen.get_state());
  }
  if (torch::cuda::is_available()) {
    for (int64_t i = 0; i < static_cast<int64_t>(torch::cuda::device_count()); ++i) {
      auto gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      j["cuda"].push_back(to_hex(gen.get_state()));
    }
  }
  return j;
}

void restore_rng_states(const json& j, const std::string& source) {
  if (!j.is_object() || !j.contains("cpu") || !j.at("cpu").is_string()) throw_bad_file(source, "no CPU generator state");
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(from_hex(j.at("cpu").get<std::string>(), source));
  }
  if (!torch::cuda::is_available() || !j.contains("cuda") || !j.at("cuda").is_array()) return;
  const auto n = std::min<std::size_t>(j.at("cuda").size(), torch::cuda::device_count());
  for (std::size_t i = 0; i < n; ++i) {
    auto gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i)));
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(from_hex(j.at("cuda")[i].get<std::string>(), source));
  }
}

json read_json_file(const std::string& path, const std::string& what) {
  try {
    return json::parse(read_file(path, what));
  } catch (const json::exception& e) {
    throw_bad_file(path, std::string("invalid JSON: ") + e.what());
  }
}

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : json_value_text(v); }

}  // namespace

std::string save_checkpoint(const std::string& output_dir, T5Model& model, const Optimizer& optimizer,
                            const Tokenizer& tokenizer, const TrainerState& state, const RunIdentity& identity,
                            const json& effective_config) {
  const std::string target = checkpoint_path(output_dir, state.step);
  fs::create_directories(checkpoints_root(output_dir));
  const std::string staging = make_staging_dir(target);
  try {
    auto path = [&](const char* name) { return (fs::path(staging) / name).string(); };
    fault_point("checkpoint-begin");
    save_safetensors(path("model.safetensors"), hf_state_dict(model));
    fault_point("checkpoint-after-model");
    write_file_atomic(path("config.json"), model->config().to_hf_json().dump(2) + "\n");
    write_file_atomic(path("spiece.model"), tokenizer.model_bytes());
    save_safetensors(path("optimizer.safetensors"), optimizer.state());
    fault_point("checkpoint-after-optimizer");
    write_file_atomic(path("rng.json"), rng_states().dump() + "\n");
    write_file_atomic(path("trainer_state.json"), state.to_json().dump(2) + "\n");
    write_file_atomic(path("run.json"), json{{"identity", identity}, {"config", effective_config}}.dump(2) + "\n");
    fault_point("checkpoint-before-manifest");
    write_manifest(staging);
    fault_point("checkpoint-before-publish");
    publish_dir(staging, target);
  } catch (...) {
    remove_tree(staging);
    throw;
  }
  fault_point("checkpoint-after-publish");
  return target;
}

std::string find_resumable_checkpoint(const std::string& output_dir) {
  for (const auto& c : list_checkpoints(output_dir)) {
    const std::string problem = verify_checkpoint(c.path);
    if (problem.empty()) return c.path;
    spdlog::warn("{}: skipping this checkpoint: {}", c.path, problem);
  }
  return "";
}

T5Config checkpoint_architecture(const std::string& dir) {
  return T5Config::from_hf_file((fs::path(dir) / "config.json").string());
}

Tokenizer checkpoint_tokenizer(const std::string& dir) { return Tokenizer::load((fs::path(dir) / "spiece.model").string()); }

TrainerState load_checkpoint(const std::string& dir, T5Model& model, Optimizer& optimizer, const RunIdentity& identity) {
  if (!dir_exists(dir)) throw_bad_file(dir, "checkpoint folder not found");
  if (auto problem = verify_checkpoint(dir); !problem.empty()) throw_bad_file(dir, "not a valid checkpoint: " + problem);
  auto path = [&](const char* name) { return (fs::path(dir) / name).string(); };

  const json run = read_json_file(path("run.json"), "checkpoint run file");
  const json saved = run.is_object() && run.contains("identity") ? run.at("identity") : json::object();
  for (const auto& [key, value] : identity.items()) {
    const json before = saved.contains(key) ? saved.at(key) : json(nullptr);
    if (before != value) {
      throw Error("checkpoint " + dir + " was saved with " + key + " = " + value_text(before) + ", this run has " +
                      value_text(value) + ": resuming would not continue the same run (start a new output.dir instead)",
                  ExitCode::kUsage);
    }
  }
  const T5Config saved_arch = checkpoint_architecture(dir);
  if (saved_arch.to_hf_json() != model->config().to_hf_json()) {
    std::string diff;
    const json a = saved_arch.to_hf_json(), b = model->config().to_hf_json();
    for (const auto& [key, value] : a.items()) {
      if (b.contains(key) && b.at(key) != value) diff += (diff.empty() ? "" : ", ") + key + " " + value.dump() + " vs " + b.at(key).dump();
    }
    throw Error("checkpoint " + dir + " holds another model architecture (" + diff + ")", ExitCode::kUsage);
  }

  load_hf_weights(model, CheckpointFiles{{path("model.safetensors")}, "", {}});
  std::map<std::string, torch::Tensor> opt;
  visit_safetensors(path("optimizer.safetensors"), [&](const std::string& name, const torch::Tensor& t) { opt.emplace(name, t.clone()); });
  optimizer.load_state(opt, path("optimizer.safetensors"));
  restore_rng_states(read_json_file(path("rng.json"), "checkpoint generator states"), path("rng.json"));
  return TrainerState::from_json(read_json_file(path("trainer_state.json"), "checkpoint trainer state"),
                                 path("trainer_state.json"));
}

}  // namespace qa
