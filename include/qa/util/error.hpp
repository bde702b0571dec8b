// The one error type of qa-train: a single human-readable line plus the process exit code it maps to.
#pragma once

#include <stdexcept>
#include <string>

namespace qa {

// Process exit codes (documented in README.md, "Exit codes").
enum class ExitCode : int {
  kOk = 0,
  kFailure = 1,     // runtime failure: I/O error, numerical failure, internal error
  kUsage = 2,       // bad command line or bad config key/value
  kBadInput = 3,    // malformed data file, tokenizer or model folder
  kStopped = 4,     // stopped by SIGTERM / SIGINT / SIGUSR1 after writing a checkpoint: resume with --resume auto
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ExitCode code = ExitCode::kFailure)
      : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

// "FILE:LINE: what" for problems in a line-oriented input file.
[[noreturn]] void throw_at_line(const std::string& file, long line, const std::string& what);
// "FILE: what" for a problem with a whole input file (missing, empty, corrupt).
[[noreturn]] void throw_bad_file(const std::string& file, const std::string& what);
// "config SOURCE: key KEY: what" for a bad config value.
[[noreturn]] void throw_config(const std::string& source, const std::string& key, const std::string& what);

}  // namespace qa
