// Test support: the Hugging Face reference outputs in tests/fixtures/hf-flan-tiny/reference.json.
#pragma once

#include <torch/torch.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qa::test {

// tests/fixtures/<name>: hf-flan-tiny (Flan-T5: gated-gelu, untied), hf-t5-relu-tied (original T5),
// hf-t5-gated-silu, hf-flan-tiny-sharded-bf16.
inline std::string fixture_dir(const std::string& name) { return std::string(QA_FIXTURES) + "/" + name; }
inline std::string fixture_model_dir() { return fixture_dir("hf-flan-tiny"); }

// A fixture's reference.json (parsed once).
inline const nlohmann::json& reference_of(const std::string& name) {
  static std::map<std::string, nlohmann::json> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    std::ifstream in(fixture_dir(name) + "/reference.json");
    it = cache.emplace(name, nlohmann::json::parse(in)).first;
  }
  return it->second;
}
inline const nlohmann::json& reference() { return reference_of("hf-flan-tiny"); }

inline void flatten(const nlohmann::json& j, std::vector<double>& out) {
  if (j.is_array()) {
    for (const auto& v : j) flatten(v, out);
  } else {
    out.push_back(j.get<double>());
  }
}

inline std::vector<int64_t> shape_of(const nlohmann::json& j) {
  std::vector<int64_t> s;
  for (const nlohmann::json* p = &j; p->is_array(); p = &(*p)[0]) s.push_back(static_cast<int64_t>(p->size()));
  return s;
}

// A nested JSON array as a tensor of `dtype`.
inline torch::Tensor tensor_of(const nlohmann::json& j, torch::ScalarType dtype = torch::kFloat) {
  std::vector<double> flat;
  flatten(j, flat);
  return torch::tensor(flat, torch::kDouble).reshape(shape_of(j)).to(dtype);
}

// ||a - b|| / ||b||
inline double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  auto bd = b.to(torch::kDouble);
  return ((a.to(torch::kDouble) - bd).norm() / bd.norm()).item<double>();
}

}  // namespace qa::test
