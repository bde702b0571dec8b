#include "qa/log/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "qa/util/error.hpp"

namespace qa {
namespace {
std::shared_ptr<spdlog::sinks::sink> g_file_sink;
}

void init_logging(const std::string& level) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("qa-train", console);
  logger->set_pattern("[%Y-%m-%d %H:%M:%S] [%^%l%$] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void add_log_file(const std::string& path) {
  try {
    g_file_sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/true);
  } catch (const spdlog::spdlog_ex& e) {
    throw Error(path + ": cannot write the log file: " + e.what());
  }
  g_file_sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  spdlog::default_logger()->sinks().push_back(g_file_sink);
}

void log_error_to_file(const std::string& message) {
  if (!g_file_sink) return;
  g_file_sink->log(spdlog::details::log_msg("qa-train", spdlog::level::err, message));
  g_file_sink->flush();
}

void close_log_file() {
  if (!g_file_sink) return;
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), g_file_sink), sinks.end());
  g_file_sink->flush();
  g_file_sink.reset();
}

}  // namespace qa
