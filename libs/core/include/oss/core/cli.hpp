#pragma once
/// Command-line flags that also read environment variables (so containers can be configured by
/// environment alone). Parsed once into a FlagValues map; programs turn it into validated config
/// structs. Bad usage throws UsageError (exit code 2).
#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace oss::core {

/// Exit codes of every program (CONTRACT.md).
enum ExitCode : int { kExitOk = 0, kExitProblem = 1, kExitUsage = 2, kExitDependency = 3 };

/// Bad usage or configuration: the message is printed on stderr and the program exits with 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// A dependency (database, broker) could not be reached at start: exit code 3.
struct DependencyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct FlagSpec {
  std::string name;                  // without the leading "--"
  std::string env;                   // environment variable, or empty
  std::string help;
  std::optional<std::string> fallback = std::nullopt;  // default value
  bool required = false;
  bool is_switch = false;            // takes no value (--json, --once)
  bool secret = false;               // never printed
};

class FlagValues {
 public:
  bool has(const std::string& name) const { return values_.contains(name); }
  const std::string& get(const std::string& name) const;  // throws UsageError if absent
  std::optional<std::string> get_optional(const std::string& name) const;
  bool on(const std::string& name) const { return has(name) && values_.at(name) != "false"; }
  /// The flag as an integer in [min, max]; UsageError naming the flag otherwise.
  long get_int(const std::string& name, long min, long max) const;
  /// The flag as a duration (`90s`, `15m`, `PT1H`); UsageError naming the flag otherwise.
  std::chrono::milliseconds get_duration(const std::string& name) const;
  void set(const std::string& name, std::string value) { values_[name] = std::move(value); }
  const std::vector<std::string>& positional() const { return positional_; }
  void add_positional(std::string v) { positional_.push_back(std::move(v)); }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

/// Parses args (after the subcommand). Precedence: flag, then environment, then default.
/// `env` is injectable for tests; nullptr means the process environment.
FlagValues parse_flags(const std::vector<FlagSpec>& specs, const std::vector<std::string>& args,
                       const std::map<std::string, std::string>* env = nullptr,
                       bool allow_positional = false);

/// Help text for one subcommand: usage line and one line per flag with its variable and default.
std::string format_help(const std::string& usage, const std::vector<FlagSpec>& specs);

}  // namespace oss::core
