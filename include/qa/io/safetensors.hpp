// Reading and writing tensors in the safetensors format (Hugging Face's model.safetensors).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace qa {

// Calls `fn(name, tensor)` for every tensor of a safetensors file, in file order. `tensor` has the
// file's dtype and borrows the memory-mapped bytes: it is valid only during the call (copy_ it into
// its destination). The header is validated first; errors are one-line qa::Error naming the file.
void visit_safetensors(const std::string& path,
                       const std::function<void(const std::string& name, const torch::Tensor& tensor)>& fn);

// Reads every tensor of a safetensors file (memory-mapped; each tensor copied once, converted to
// `dtype`). Corrupt or truncated files are a one-line qa::Error naming the file.
std::map<std::string, torch::Tensor> load_safetensors(const std::string& path, torch::ScalarType dtype = torch::kFloat);

// Writes `tensors` (contiguous CPU copies are made as needed) with their own dtypes. Not atomic by
// itself: write into a staging folder (see util/fs.hpp).
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace qa
