#include "qa/train/checkpoint_store.hpp"

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "qa/util/crc32c.hpp"
#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"

namespace qa {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// "step-123" -> 123; anything else -> -1.
int64_t step_of(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() == 5 || name.size() > 5 + 18) return -1;
  int64_t v = 0;
  for (std::size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

bool is_staging(const std::string& name) { return name.rfind(".step-", 0) == 0 && name.find(".tmp-") != std::string::npos; }

}  // namespace

std::string checkpoints_root(const std::string& output_dir) { return (fs::path(output_dir) / "checkpoints").string(); }

std::string checkpoint_path(const std::string& output_dir, int64_t step) {
  return (fs::path(checkpoints_root(output_dir)) / ("step-" + std::to_string(step))).string();
}

void write_manifest(const std::string& dir) {
  json files = json::object();
  std::vector<fs::path> paths;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename() != kManifestFile) paths.push_back(e.path());
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    const FileChecksum c = crc32c_file(p.string());
    files[p.filename().string()] = {{"bytes", c.bytes}, {"crc32c", c.crc}};
  }
  write_file_atomic((fs::path(dir) / kManifestFile).string(), json{{"format", 1}, {"files", files}}.dump(2) + "\n");
}

std::string verify_checkpoint(const std::string& dir) {
  const std::string manifest_path = (fs::path(dir) / kManifestFile).string();
  if (!file_exists(manifest_path)) return "no manifest.json (incomplete)";
  json m;
  try {
    m = json::parse(read_file(manifest_path, "checkpoint manifest"));
  } catch (const std::exception& e) {
    return std::string("unreadable manifest.json: ") + e.what();
  }
  if (!m.is_object() || !m.contains("files") || !m.at("files").is_object() || m.at("files").empty()) {
    return "manifest.json lists no files";
  }
  for (const auto& [name, entry] : m.at("files").items()) {
    const std::string path = (fs::path(dir) / name).string();
    if (name.find('/') != std::string::npos || !file_exists(path)) return name + ": missing";
    if (!entry.is_object() || !entry.contains("bytes") || !entry.contains("crc32c") ||
        !entry.at("bytes").is_number_unsigned() || !entry.at("crc32c").is_number_unsigned()) {
      return "manifest.json: bad entry for " + name;
    }
    FileChecksum c;
    try {
      c = crc32c_file(path);
    } catch (const Error& e) {
      return e.what();
    }
    if (c.bytes != entry.at("bytes").get<uint64_t>()) {
      return name + ": " + std::to_string(c.bytes) + " bytes, the manifest says " + std::to_string(entry.at("bytes").get<uint64_t>());
    }
    if (c.crc != entry.at("crc32c").get<uint32_t>()) return name + ": checksum mismatch";
  }
  return "";
}

std::vector<CheckpointRef> list_checkpoints(const std::string& output_dir) {
  std::vector<CheckpointRef> out;
  std::error_code ec;
  const std::string root = checkpoints_root(output_dir);
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const int64_t step = step_of(e.path().filename().string());
    if (step >= 0 && e.is_directory()) out.push_back({step, e.path().string()});
  }
  std::sort(out.begin(), out.end(), [](const CheckpointRef& a, const CheckpointRef& b) { return a.step > b.step; });
  return out;
}

void prune_checkpoints(const std::string& output_dir, int64_t keep_last, int64_t keep_step) {
  auto all = list_checkpoints(output_dir);
  std::error_code ec;
  for (std::size_t i = static_cast<std::size_t>(std::max<int64_t>(keep_last, 0)); i < all.size(); ++i) {
    if (all[i].step == keep_step) continue;
    // A kill while deleting must not leave a half-deleted checkpoint that looks published.
    if (!discard_dir(all[i].path)) spdlog::warn("{}: cannot delete old checkpoint", all[i].path);
  }
  const std::string root = checkpoints_root(output_dir);
  if (!fs::is_directory(root, ec)) return;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (is_staging(e.path().filename().string())) remove_tree(e.path());
  }
}

}  // namespace qa
