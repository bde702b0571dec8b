// Test support: the Hugging Face reference outputs in tests/fixtures/hf-flan-tiny/reference.json.
#pragma once

#include <torch/torch.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qa::test {

inline std::string fixture_model_dir() { return std::string(QA_FIXTURES) + "/hf-flan-tiny"; }

inline const nlohmann::json& reference() {
  static const nlohmann::json j = [] {
    std::ifstream in(fixture_model_dir() + "/reference.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

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
