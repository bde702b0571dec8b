// Wording shared by every parser of untrusted JSON (config, JSONL records, safetensors headers).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace qa {

// "an integer", "a number", "a string", "a boolean", "null", "an array", "an object".
std::string json_type_name(const nlohmann::json& v);

// A value for an error message: scalars as JSON text, containers by their type name only (printing
// an arbitrarily deep array recurses once per level and could overflow the stack).
std::string json_value_text(const nlohmann::json& v);

// nlohmann's parse error without its "[json.exception.parse_error.101] parse error at line 1, " prefix.
std::string short_parse_error(const nlohmann::json::parse_error& e);

}  // namespace qa
