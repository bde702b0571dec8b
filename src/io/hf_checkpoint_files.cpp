#include "qa/io/hf_checkpoint_files.hpp"

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"
#include "qa/util/json_text.hpp"

namespace qa {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

CheckpointFiles read_index(const std::string& dir, const std::string& index_path) {
  json j;
  try {
    j = json::parse(read_file(index_path, "checkpoint index"));
  } catch (const json::exception& e) {
    throw_bad_file(index_path, std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j.at("weight_map").is_object()) {
    throw_bad_file(index_path, "expected an object with a \"weight_map\" object (tensor name -> shard file)");
  }
  CheckpointFiles out;
  out.index = index_path;
  std::set<std::string> shards;
  for (const auto& [name, file] : j.at("weight_map").items()) {
    if (!file.is_string()) throw_bad_file(index_path, "weight_map['" + name + "']: expected a file name, got " + json_value_text(file));
    const std::string shard = file.get<std::string>();
    // A shard is a plain file name next to the index: nothing may point outside the model folder.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
      throw_bad_file(index_path, "weight_map['" + name + "']: '" + shard + "' is not a file name in the model folder");
    }
    const std::string path = (fs::path(dir) / shard).string();
    if (shards.insert(shard).second) {
      if (!file_exists(path)) throw_bad_file(index_path, "shard '" + shard + "' (of tensor '" + name + "') is missing");
      out.files.push_back(path);
    }
    out.weight_map.emplace(name, path);
  }
  if (out.files.empty()) throw_bad_file(index_path, "weight_map is empty");
  return out;
}

}  // namespace

CheckpointFiles locate_checkpoint_files(const std::string& dir) {
  const std::string single = (fs::path(dir) / "model.safetensors").string();
  if (file_exists(single)) return {{single}, "", {}};
  const std::string index = (fs::path(dir) / "model.safetensors.index.json").string();
  if (file_exists(index)) return read_index(dir, index);
  for (const char* pickle : {"pytorch_model.bin", "pytorch_model.bin.index.json"}) {
    if (file_exists((fs::path(dir) / pickle).string())) {
      throw_bad_file(dir, std::string("has only ") + pickle +
                              ": qa-train reads only model.safetensors or a sharded model.safetensors.index.json "
                              "(pickle files can run code; convert with transformers' save_pretrained)");
    }
  }
  throw_bad_file(dir, "no weights: model.safetensors (or model.safetensors.index.json) is missing");
}

}  // namespace qa
