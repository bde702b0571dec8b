// Small string helpers shared by the config, CLI and metrics code.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace qa {

// Edit distance (insert, delete, substitute each cost 1).
std::size_t levenshtein(std::string_view a, std::string_view b);
// The candidate closest to `name` by edit distance, or "" when none is reasonably close.
std::string closest_match(std::string_view name, const std::vector<std::string>& candidates);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
bool starts_with(std::string_view s, std::string_view prefix);
// Shortest decimal form that still reads like the value ("0.0003", "12", "1e-06").
std::string format_number(double v);
// Human duration: "42s", "3m05s", "1h02m".
std::string format_duration(double seconds);

}  // namespace qa
