#include "qa/util/error.hpp"

namespace qa {

void throw_at_line(const std::string& file, long line, const std::string& what) {
  throw Error(file + ":" + std::to_string(line) + ": " + what, ExitCode::kBadInput);
}

void throw_bad_file(const std::string& file, const std::string& what) {
  throw Error(file + ": " + what, ExitCode::kBadInput);
}

void throw_config(const std::string& source, const std::string& key, const std::string& what) {
  throw Error(source + ": key '" + key + "': " + what, ExitCode::kUsage);
}

}  // namespace qa
