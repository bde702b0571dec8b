// Human-readable logging (spdlog): stderr always, plus logs/train.log once the output folder exists.
#pragma once

#include <string>

namespace qa {

// Console logger at `level` (debug | info | warn | error).
void init_logging(const std::string& level);
// Adds `path` (truncated) as a second sink of the default logger; errors name the file.
void add_log_file(const std::string& path);
// Appends an error line to logs/train.log when one is open (the console gets it from main).
void log_error_to_file(const std::string& message);
// Flushes and detaches the log file (before the output folder is published or removed).
void close_log_file();

}  // namespace qa
