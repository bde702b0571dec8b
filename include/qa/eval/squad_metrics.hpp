// Exact match and F1 as the official SQuAD v1.1 evaluation script computes them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace qa {

// Lower case, remove ASCII punctuation, remove the articles a/an/the, collapse whitespace.
std::string normalize_answer(std::string_view s);
// 1 when the normalised prediction equals a normalised gold answer (best over golds), else 0.
double exact_match_score(std::string_view prediction, const std::vector<std::string>& golds);
// Token-overlap F1 of normalised answers, best over golds, in [0, 1].
double f1_score(std::string_view prediction, const std::vector<std::string>& golds);

}  // namespace qa
