// The config schema: one entry per key with its type, constraints, documentation and accessor.
// The loader, the `--set` parser, the effective-config writer and `qa-train config --keys` all read
// this one table, so a key cannot be documented, parsed and written in three different ways.
#pragma once

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qa/config/config.hpp"

namespace qa {

enum class KeyKind { kInt, kFloat, kBool, kString, kPath, kEnum };

struct KeySpec {
  std::string key;  // "section.name"
  KeyKind kind;
  std::string doc;
  std::vector<std::string> choices;  // kEnum
  std::string keyword;               // kPath: a value kept verbatim instead of resolved ("auto")
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;        // value must be > min (else >= min)
  bool max_exclusive = false;
  std::function<nlohmann::json(const Config&)> get;
  std::function<void(Config&, const nlohmann::json&)> set;  // value already checked
};

const std::vector<KeySpec>& config_schema();
const KeySpec* find_key(const std::string& key);

// Human description of the accepted values ("integer >= 1", "one of: fp32, bf16").
std::string describe_kind(const KeySpec& spec);

}  // namespace qa
