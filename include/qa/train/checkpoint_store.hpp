// The checkpoint folders of a run, <output>/checkpoints/step-N/, without torch: a manifest with every
// file's size and CRC-32C (written last, so a folder without a valid manifest is incomplete), its
// verification, finding the newest valid checkpoint, and pruning to the newest `keep_last` plus the best.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qa {

inline constexpr const char* kManifestFile = "manifest.json";

// <output_dir>/checkpoints
std::string checkpoints_root(const std::string& output_dir);
// <output_dir>/checkpoints/step-N
std::string checkpoint_path(const std::string& output_dir, int64_t step);

// Writes manifest.json for every other regular file of `dir` (fsynced, atomically).
void write_manifest(const std::string& dir);
// "" when `dir` holds a manifest and every file it lists with the listed size and checksum;
// otherwise what is wrong ("no manifest.json (incomplete)", "model.safetensors: checksum mismatch").
std::string verify_checkpoint(const std::string& dir);

struct CheckpointRef {
  int64_t step;
  std::string path;
};
// Published checkpoint folders (step-N) under `output_dir`, newest first; staging folders are skipped.
std::vector<CheckpointRef> list_checkpoints(const std::string& output_dir);

// Deletes published checkpoints beyond the newest `keep_last`, except step `keep_step` (the best;
// -1: none), and staging folders left by a killed run. Never touches anything else.
void prune_checkpoints(const std::string& output_dir, int64_t keep_last, int64_t keep_step);

}  // namespace qa
