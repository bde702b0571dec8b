// Which files hold the weights of a Hugging Face model folder: `model.safetensors`, or a sharded
// checkpoint (`model.safetensors.index.json` naming `model-0000k-of-0000n.safetensors` files), as
// transformers' from_pretrained looks for them. Torch-free: only names and the index are read here.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace qa {

struct CheckpointFiles {
  std::vector<std::string> files;                 // paths of the safetensors files to read, in order
  std::string index;                              // the index file (sharded checkpoints only)
  std::map<std::string, std::string> weight_map;  // tensor name -> path of its shard (sharded only)
};

// Finds the weight files of `dir`. model.safetensors wins over an index, as in transformers. Errors
// (qa::Error, exit code kBadInput) name the folder or the index file and what is wrong: no weights,
// only pickle files (never read: they can run code), a malformed index, a shard outside the folder
// or missing.
CheckpointFiles locate_checkpoint_files(const std::string& dir);

}  // namespace qa
