#include "qa/config/config.hpp"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "qa/config/schema.hpp"
#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"
#include "qa/util/json_text.hpp"
#include "qa/util/strings.hpp"
#include "qa/util/utf8.hpp"

namespace qa {
namespace {

using json = nlohmann::json;

bool is_comment_key(const std::string& k) { return !k.empty() && k[0] == '_'; }

std::vector<std::string> section_names() {
  std::vector<std::string> out;
  for (const auto& s : config_schema()) {
    std::string sec = s.key.substr(0, s.key.find('.'));
    if (out.empty() || out.back() != sec) out.push_back(sec);
  }
  return out;
}

[[noreturn]] void unknown_key(const std::string& source, const std::string& key, const std::vector<std::string>& valid) {
  std::string hint = closest_match(key, valid);
  throw_config(source, key, "unknown key" + (hint.empty() ? std::string() : " (did you mean '" + hint + "'?)"));
}

// Type- and range-checks `v` for `spec`, returns the value to store (ints normalised).
json checked_value(const KeySpec& spec, const json& v, const std::string& source) {
  auto bad = [&](const std::string& why) { throw_config(source, spec.key, why); };
  auto expected = [&] { bad("expected " + describe_kind(spec) + ", got " + json_type_name(v) + (v.is_primitive() ? " (" + v.dump() + ")" : "")); };
  // Copied only once its type is known to be a scalar: copying an arbitrarily deep array or object
  // recurses once per level and overflows the stack ({"train": {"seed": [[[[...]]]]}}).
  json out;
  switch (spec.kind) {
    case KeyKind::kInt: {
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        // Would wrap around to a negative int64_t when stored.
        bad(v.dump() + " is out of range: expected " + describe_kind(spec) + " (at most " + std::to_string(INT64_MAX) + ")");
      }
      if (v.is_number_integer()) {
        out = v;
        break;
      }
      if (v.is_number_float() && std::isfinite(v.get<double>()) && std::floor(v.get<double>()) == v.get<double>() &&
          std::fabs(v.get<double>()) < 9e15) {
        out = static_cast<int64_t>(v.get<double>());
        break;
      }
      expected();
      break;
    }
    case KeyKind::kFloat:
      if (!v.is_number() || !std::isfinite(v.get<double>())) expected();
      out = v.get<double>();
      break;
    case KeyKind::kBool:
      if (!v.is_boolean()) expected();
      out = v;
      break;
    case KeyKind::kString:
    case KeyKind::kPath:
      if (!v.is_string()) expected();
      out = v;
      break;
    case KeyKind::kEnum: {
      if (!v.is_string()) expected();
      out = v;
      const auto s = v.get<std::string>();
      bool ok = false;
      for (const auto& c : spec.choices) ok = ok || c == s;
      if (!ok) {
        std::string hint = closest_match(s, spec.choices);
        bad("'" + s + "' is not " + describe_kind(spec) + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
      }
      break;
    }
  }
  if (spec.kind == KeyKind::kInt || spec.kind == KeyKind::kFloat) {
    double d = out.get<double>();
    bool low = spec.min_exclusive ? !(d > spec.min) : !(d >= spec.min);
    bool high = spec.max_exclusive ? !(d < spec.max) : !(d <= spec.max);
    if (low || high) bad(format_number(d) + " is out of range: expected " + describe_kind(spec));
  }
  return out;
}

void set_checked(Config& cfg, const KeySpec& spec, const json& v, const std::string& source, const std::string& base_dir) {
  json value = checked_value(spec, v, source);
  if (spec.kind == KeyKind::kPath && value != spec.keyword) value = resolve_path(base_dir, value.get<std::string>());
  spec.set(cfg, value);
}

json parse_json_text(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // Turn the byte offset into line:column, the way editors count.
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    auto pos = what.find("syntax error");
    throw Error(source + ":" + std::to_string(line) + ":" + std::to_string(col) + ": invalid JSON: " +
                    (pos == std::string::npos ? what : what.substr(pos)),
                ExitCode::kUsage);
  } catch (const json::exception& e) {
    // The parser's other error: out_of_range.406, a number too large for a double (1e400).
    std::string what = e.what();
    auto tag_end = what.find("] ");
    throw Error(source + ": invalid JSON: " + (tag_end == std::string::npos ? what : what.substr(tag_end + 2)),
                ExitCode::kUsage);
  }
}

}  // namespace

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const auto& s : config_schema()) keys.push_back(s.key);
  return keys;
}

Config Config::load_file(const std::string& path) {
  std::string text;
  try {
    text = read_file(path, "config file");
  } catch (const Error& e) {
    throw Error(e.what(), ExitCode::kUsage);
  }
  auto base = std::filesystem::path(path).parent_path().string();
  return from_json_text(text, path, base.empty() ? "." : base);
}

Config Config::from_json_text(const std::string& text, const std::string& source, const std::string& base_dir) {
  Config cfg;
  cfg.source = source;
  json root = parse_json_text(text, source);
  if (!root.is_object()) throw Error(source + ": the config must be a JSON object of sections", ExitCode::kUsage);
  const auto sections = section_names();
  const auto keys = config_keys();
  for (const auto& [section, body] : root.items()) {
    if (is_comment_key(section)) continue;
    bool known = false;
    for (const auto& s : sections) known = known || s == section;
    if (!known) {
      std::string hint = closest_match(section, sections);
      throw_config(source, section, "unknown section" + (hint.empty() ? std::string() : " (did you mean '" + hint + "'?)"));
    }
    if (!body.is_object()) throw_config(source, section, "expected an object of keys, got " + json_type_name(body));
    for (const auto& [name, value] : body.items()) {
      if (is_comment_key(name)) continue;
      const std::string key = section + "." + name;
      const KeySpec* spec = find_key(key);
      if (!spec) unknown_key(source, key, keys);
      set_checked(cfg, *spec, value, source, base_dir);
    }
  }
  // Defaults of path keys (output.dir = "output") are relative to the current folder.
  const std::string cwd = std::filesystem::current_path().string();
  for (const auto& spec : config_schema()) {
    if (spec.kind != KeyKind::kPath) continue;  // only path values are strings to resolve
    const std::string v = spec.get(cfg).get<std::string>();
    if (v != spec.keyword) spec.set(cfg, resolve_path(cwd, v));
  }
  return cfg;
}

void Config::apply_override(const std::string& assignment, const std::string& base_dir) {
  const std::string source = "--set " + assignment;
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error("--set '" + assignment + "': expected section.key=value", ExitCode::kUsage);
  }
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  const KeySpec* spec = find_key(key);
  if (!spec) unknown_key("--set", key, config_keys());
  json value;
  auto bad = [&] { throw_config("--set", key, "expected " + describe_kind(*spec) + ", got '" + text + "'"); };
  switch (spec->kind) {
    case KeyKind::kInt: {
      char* end = nullptr;
      errno = 0;
      long long v = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno == ERANGE) bad();
      value = static_cast<int64_t>(v);
      break;
    }
    case KeyKind::kFloat: {
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(v)) bad();
      value = v;
      break;
    }
    case KeyKind::kBool:
      if (text == "true" || text == "1") {
        value = true;
      } else if (text == "false" || text == "0") {
        value = false;
      } else {
        bad();
      }
      break;
    default:
      // JSON text is valid UTF-8 once parsed, a command-line value need not be; the effective config
      // (to_json().dump()) cannot be written with invalid UTF-8 in it.
      if (std::size_t at = 0; !is_valid_utf8(text, &at)) {
        throw_config("--set", key, "invalid UTF-8 at byte " + std::to_string(at + 1) + " of the value");
      }
      value = text;
  }
  set_checked(*this, *spec, value, "--set", base_dir);
}

void Config::validate() const {
  auto need_file = [&](const std::string& key, const std::string& path, bool required) {
    if (path.empty()) {
      if (required) throw_config(source, key, "is required");
      return;
    }
    if (!file_exists(path)) throw_config(source, key, "file not found: " + path);
  };
  need_file("data.train", data.train, true);
  need_file("data.validation", data.validation, false);
  need_file("tokenizer.model", tokenizer.model, false);
  if (!model.init_from.empty()) {
    if (!dir_exists(model.init_from)) throw_config(source, "model.init_from",
                   "folder not found: " + model.init_from + " (fetch one on a machine with internet, e.g. huggingface-cli "
                   "download google/flan-t5-small --local-dir " + model.init_from + ")");
    if (!tokenizer.model.empty()) {
      throw_config(source, "tokenizer.model", "must be empty with model.init_from (the folder's spiece.model is used)");
    }
  }
  if (output.dir.empty()) throw_config(source, "output.dir", "must not be empty");
  if (data.source_template.find("{question}") == std::string::npos) {
    throw_config(source, "data.source_template", "must contain {question}");
  }
  if (data.source_template.find("{context}") == std::string::npos) {
    throw_config(source, "data.source_template", "must contain {context}");
  }
  T5Config t5 = model.t5;
  t5.derive_activation(source);
  t5.validate(source, "model.");
}

nlohmann::json Config::to_json() const {
  json out = json::object();
  for (const auto& s : config_schema()) {
    auto dot = s.key.find('.');
    out[s.key.substr(0, dot)][s.key.substr(dot + 1)] = s.get(*this);
  }
  return out;
}

}  // namespace qa
