#pragma once
/// Structured log lines on stderr: `ts=... level=... logger=... msg="..." key=value ...`
/// (logfmt), UTC timestamps. The logger is the only global we keep.
#include <memory>
#include <spdlog/spdlog.h>
#include <string>

namespace oss::core {

/// Sets the default logger's name, format and level ("trace".."off"; unknown → UsageError).
void init_logging(const std::string& program, const std::string& level);

/// A named child logger sharing the default sink, e.g. logger("relay.publisher").
std::shared_ptr<spdlog::logger> logger(const std::string& component);

/// Quotes a value for logfmt when it contains spaces, quotes or '='.
std::string q(std::string_view value);

}  // namespace oss::core
