// libFuzzer target: the config loader on untrusted text. The input is the config JSON, optionally
// followed by NUL-separated `--set` assignments ("section.key=value"), e.g. "{...}\0train.seed=3\0...".
// Runs Config::from_json_text (the defaults when it rejects the text), apply_override for each assignment,
// then checks that what was accepted is within the schema, that the effective config
// (to_json().dump()) can be written and read back unchanged, and runs validate().
// qa::Error is the designed outcome for bad input; anything else escaping, a crash, a sanitizer
// report, a timeout or running out of memory is a bug.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qa/config/config.hpp"
#include "qa/config/schema.hpp"
#include "qa/util/error.hpp"

namespace {

constexpr const char* kBase = "/fuzz/configs";
constexpr const char* kCwd = "/fuzz/cwd";
constexpr std::size_t kMaxOverrides = 16;

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "config_fuzz: %s\n", what.c_str());
  std::abort();
}

// Every value the loader accepted has its key's type and lies in its key's range.
void check_schema(const qa::Config& cfg) {
  for (const auto& spec : qa::config_schema()) {
    const nlohmann::json v = spec.get(cfg);
    bool ok = true;
    switch (spec.kind) {
      case qa::KeyKind::kInt:
      case qa::KeyKind::kFloat: {
        ok = spec.kind == qa::KeyKind::kInt ? v.is_number_integer() : v.is_number_float();
        if (!ok) break;
        const double d = v.get<double>();
        ok = std::isfinite(d) && (spec.min_exclusive ? d > spec.min : d >= spec.min) &&
             (spec.max_exclusive ? d < spec.max : d <= spec.max);
        break;
      }
      case qa::KeyKind::kBool:
        ok = v.is_boolean();
        break;
      case qa::KeyKind::kString:
      case qa::KeyKind::kPath:
        ok = v.is_string();
        break;
      case qa::KeyKind::kEnum: {
        ok = false;
        if (v.is_string()) {
          for (const auto& c : spec.choices) ok = ok || c == v.get<std::string>();
        }
        break;
      }
    }
    if (!ok) broken("accepted an out-of-schema value for '" + spec.key + "': " + v.dump(-1, ' ', true));
  }
}

// The effective config (what `qa-train config` prints and training writes to logs/config.json)
// serialises and loads back to the same config.
void check_round_trip(const qa::Config& cfg) {
  const std::string text = cfg.to_json().dump(2);
  try {
    const qa::Config again = qa::Config::from_json_text(text, "effective.json", kBase);
    if (again.to_json() != cfg.to_json()) broken("the effective config does not load back unchanged:\n" + text);
  } catch (const qa::Error& e) {
    broken(std::string("the effective config is rejected: ") + e.what() + "\n" + text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  std::size_t pos = 0;
  while (true) {
    std::size_t nul = input.find('\0', pos);
    parts.push_back(input.substr(pos, nul == std::string::npos ? std::string::npos : nul - pos));
    if (nul == std::string::npos || parts.size() > kMaxOverrides) break;
    pos = nul + 1;
  }

  qa::Config cfg;
  try {
    cfg = qa::Config::from_json_text(parts[0], "fuzz.json", kBase);
  } catch (const qa::Error&) {
    cfg = qa::Config::from_json_text("{}", "defaults.json", kBase);  // the defaults, paths resolved
  }
  check_schema(cfg);
  for (std::size_t i = 1; i < parts.size(); ++i) {
    try {
      cfg.apply_override(parts[i], kCwd);
    } catch (const qa::Error&) {
    }
    check_schema(cfg);
  }
  check_round_trip(cfg);
  try {
    cfg.validate();
  } catch (const qa::Error&) {
  }
  return 0;
}
