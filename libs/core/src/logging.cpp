#include "oss/core/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include "oss/core/cli.hpp"

namespace oss::core {
namespace {
constexpr const char* kPattern = "ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l logger=%n %v";
}

void init_logging(const std::string& program, const std::string& level) {
  const auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    throw UsageError("unknown log level '" + level + "' (trace, debug, info, warn, error, off)");
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto root = std::make_shared<spdlog::logger>(program, sink);
  root->set_pattern(kPattern, spdlog::pattern_time_type::utc);
  root->set_level(lvl);
  root->flush_on(spdlog::level::info);
  spdlog::set_default_logger(root);
}

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
  if (auto existing = spdlog::get(component)) return existing;
  auto root = spdlog::default_logger();
  auto child = root->clone(component);
  try {
    spdlog::register_logger(child);
  } catch (const spdlog::spdlog_ex&) {
    // Registered concurrently by another thread: use that one.
    if (auto existing = spdlog::get(component)) return existing;
    throw;
  }
  return child;
}

std::string q(std::string_view value) {
  bool needs = value.empty();
  for (char c : value)
    if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\t') needs = true;
  if (!needs) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace oss::core
