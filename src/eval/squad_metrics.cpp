#include "qa/eval/squad_metrics.hpp"

#include <algorithm>
#include <map>
#include <sstream>

namespace qa {
namespace {

bool is_ascii_punct(unsigned char c) {
  // Python's string.punctuation: !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

double f1_single(const std::vector<std::string>& pred, const std::vector<std::string>& gold) {
  std::map<std::string, int> counts;
  for (const auto& t : gold) ++counts[t];
  int same = 0;
  for (const auto& t : pred) {
    auto it = counts.find(t);
    if (it != counts.end() && it->second > 0) {
      --it->second;
      ++same;
    }
  }
  if (same == 0) return 0.0;
  const double precision = static_cast<double>(same) / static_cast<double>(pred.size());
  const double recall = static_cast<double>(same) / static_cast<double>(gold.size());
  return 2 * precision * recall / (precision + recall);
}

}  // namespace

std::string normalize_answer(std::string_view s) {
  std::string text;
  text.reserve(s.size());
  for (unsigned char c : s) {
    if (is_ascii_punct(c)) continue;
    text += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  std::string out;
  for (const auto& w : split_ws(text)) {
    if (w == "a" || w == "an" || w == "the") continue;
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

double exact_match_score(std::string_view prediction, const std::vector<std::string>& golds) {
  const std::string p = normalize_answer(prediction);
  for (const auto& g : golds) {
    if (normalize_answer(g) == p) return 1.0;
  }
  return 0.0;
}

double f1_score(std::string_view prediction, const std::vector<std::string>& golds) {
  const auto p = split_ws(normalize_answer(prediction));
  double best = 0.0;
  for (const auto& g : golds) best = std::max(best, f1_single(p, split_ws(normalize_answer(g))));
  return best;
}

}  // namespace qa
