#include "qa/util/json_text.hpp"

namespace qa {

std::string json_type_name(const nlohmann::json& v) {
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  return "an object";
}

std::string short_parse_error(const nlohmann::json::parse_error& e) {
  std::string what = e.what();
  auto col = what.find("column");
  return col == std::string::npos ? what : what.substr(col);
}

std::string json_value_text(const nlohmann::json& v) { return v.is_primitive() ? v.dump() : json_type_name(v); }

}  // namespace qa
