#include "oss/core/cli.hpp"

#include <charconv>
#include <cstdlib>

#include "oss/core/duration.hpp"
#include <fmt/format.h>

namespace oss::core {

const std::string& FlagValues::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw UsageError("missing required flag --" + name);
  return it->second;
}

long FlagValues::get_int(const std::string& name, long min, long max) const {
  const std::string& v = get(name);
  long out = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || ptr != v.data() + v.size() || out < min || out > max)
    throw UsageError("--" + name + ": expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                     "], got '" + v + "'");
  return out;
}

std::chrono::milliseconds FlagValues::get_duration(const std::string& name) const {
  try {
    return parse_duration(get(name));
  } catch (const DurationError& e) {
    throw UsageError("--" + name + ": " + e.what());
  }
}

std::optional<std::string> FlagValues::get_optional(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

FlagValues parse_flags(const std::vector<FlagSpec>& specs, const std::vector<std::string>& args,
                       const std::map<std::string, std::string>* env, bool allow_positional) {
  FlagValues out;
  auto find = [&](const std::string& name) -> const FlagSpec* {
    for (const auto& s : specs)
      if (s.name == name) return &s;
    return nullptr;
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      if (allow_positional) {
        out.add_positional(a);
        continue;
      }
      throw UsageError("unexpected argument '" + a + "'");
    }
    std::string name = a.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const FlagSpec* spec = find(name);
    if (spec == nullptr) throw UsageError("unknown flag --" + name + " (see --help)");
    if (spec->is_switch) {
      out.set(name, value.value_or("true"));
      continue;
    }
    if (!value) {
      if (i + 1 >= args.size()) throw UsageError("flag --" + name + " needs a value");
      value = args[++i];
    }
    out.set(name, *value);
  }
  for (const auto& s : specs) {
    if (out.has(s.name)) continue;
    if (!s.env.empty()) {
      std::optional<std::string> v;
      if (env != nullptr) {
        if (auto it = env->find(s.env); it != env->end()) v = it->second;
      } else {
        // NOLINTNEXTLINE(concurrency-mt-unsafe): flags are parsed at startup, before any thread
        const char* e = std::getenv(s.env.c_str());
        if (e != nullptr) v = e;
      }
      if (v && !v->empty()) {
        out.set(s.name, *v);
        continue;
      }
    }
    if (s.fallback) {
      out.set(s.name, *s.fallback);
      continue;
    }
    if (s.required) {
      throw UsageError("missing required flag --" + s.name +
                       (s.env.empty() ? std::string() : " (or environment variable " + s.env + ")"));
    }
  }
  return out;
}

std::string format_help(const std::string& usage, const std::vector<FlagSpec>& specs) {
  std::string out = "usage: " + usage + "\n\nflags:\n";
  for (const auto& s : specs) {
    std::string left = "  --" + s.name + (s.is_switch ? "" : " VALUE");
    std::string right = s.help;
    if (!s.env.empty()) right += " [env " + s.env + "]";
    if (s.fallback && !s.secret) right += " (default: " + *s.fallback + ")";
    if (s.required) right += " (required)";
    out += fmt::format("{:<28} {}\n", left, right);
  }
  return out;
}

}  // namespace oss::core
