#include "domain/envelope.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <vector>

namespace oss::domain {
namespace {

using nlohmann::json;

EnvelopeError malformed(std::string detail) {
  return EnvelopeError{"malformed", std::move(detail)};
}

// Untrusted text quoted for a message: JSON-escaped (control characters visible) and cut short.
std::string shown(std::string_view s) {
  constexpr std::size_t kMax = 80;
  const bool cut = s.size() > kMax;
  std::string text(s.substr(0, kMax));
  std::string out = json(std::move(text)).dump(-1, ' ', false, json::error_handler_t::replace);
  if (cut) out += "...";
  return out;
}

std::string shown_json(const json& v) {
  if (v.is_string()) return shown(std::string_view(v.get_ref<const std::string&>()));
  std::string out = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (out.size() > 80) out = out.substr(0, 80) + "...";
  return out;
}

// Nesting depth of the body, counted without parsing, so a hostile "[[[[…" is refused before it
// builds a deep tree (later recursive walks, e.g. dump(), would overflow the stack).
bool nests_deeper_than(std::string_view body, std::size_t limit) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : body) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

bool has_control_characters(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

bool contains_nul(const json& root) {
  // An explicit stack rather than recursion: the body is untrusted input (its depth is also
  // bounded by kMaxEnvelopeDepth before this runs).
  std::vector<const json*> pending{&root};
  while (!pending.empty()) {
    const json& v = *pending.back();
    pending.pop_back();
    if (v.is_string()) {
      if (v.get_ref<const std::string&>().find('\0') != std::string::npos) return true;
    } else if (v.is_object()) {
      for (const auto& [key, child] : v.items()) {
        if (key.find('\0') != std::string::npos) return true;
        pending.push_back(&child);
      }
    } else if (v.is_array()) {
      for (const auto& child : v) pending.push_back(&child);
    }
  }
  return false;
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::optional<std::string> normalise_uuid(std::string_view s) {
  if (s.size() != 36) return std::nullopt;
  std::string out(s);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (out[i] != '-') return std::nullopt;
    } else {
      if (!is_hex(out[i])) return std::nullopt;
      if (out[i] >= 'A' && out[i] <= 'F') out[i] = static_cast<char>(out[i] - 'A' + 'a');
    }
  }
  return out;
}

// Looks up a required field; on failure fills `error`.
const json* field(const json& obj, std::string_view name, std::optional<EnvelopeError>& error) {
  const auto it = obj.find(name);
  if (it == obj.end()) {
    error = malformed(std::string(name) + ": missing");
    return nullptr;
  }
  return &*it;
}

std::optional<EnvelopeError> identifier(const json& obj, std::string_view name, std::string& out) {
  std::optional<EnvelopeError> error;
  const json* v = field(obj, name, error);
  if (v == nullptr) return error;
  const std::string n(name);
  if (!v->is_string()) return malformed(n + ": expected a string, got " + v->type_name());
  const auto& s = v->get_ref<const std::string&>();
  if (s.empty()) return malformed(n + ": must not be empty");
  if (s.size() > kMaxIdentifierBytes) {
    return malformed(n + ": " + std::to_string(s.size()) + " bytes is longer than the limit of " +
                     std::to_string(kMaxIdentifierBytes));
  }
  if (has_control_characters(s)) {
    return malformed(n + ": must not contain control characters, got " +
                     shown(std::string_view(s)));
  }
  out = s;
  return std::nullopt;
}

}  // namespace

std::variant<Envelope, EnvelopeError> parse_envelope(std::string_view body, std::size_t max_bytes) {
  if (body.size() > max_bytes) {
    return malformed("body of " + std::to_string(body.size()) + " bytes exceeds the limit of " +
                     std::to_string(max_bytes));
  }
  if (nests_deeper_than(body, kMaxEnvelopeDepth)) {
    return malformed("body nests arrays/objects deeper than the limit of " +
                     std::to_string(kMaxEnvelopeDepth) + " levels");
  }
  json doc;
  try {
    doc = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for numbers such as 1e999.
    return malformed(std::string("body is not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) {
    return malformed(std::string("body must be a JSON object, got ") + doc.type_name());
  }

  Envelope env;
  std::optional<EnvelopeError> error;

  if (const json* id = field(doc, "event_id", error)) {
    if (!id->is_string()) {
      return malformed(std::string("event_id: expected a UUID string, got ") + id->type_name());
    }
    auto uuid = normalise_uuid(id->get_ref<const std::string&>());
    if (!uuid) {
      return malformed("event_id: expected a UUID (8-4-4-4-12 hex digits), got " + shown_json(*id));
    }
    env.event_id = std::move(*uuid);
  } else {
    return *error;
  }

  if (auto e = identifier(doc, "source", env.source)) return *e;
  if (auto e = identifier(doc, "aggregate_type", env.aggregate_type)) return *e;
  if (auto e = identifier(doc, "aggregate_id", env.aggregate_id)) return *e;

  if (const json* seq = field(doc, "sequence", error)) {
    if (seq->is_number_unsigned()) {
      const auto u = seq->get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return malformed("sequence: " + shown_json(*seq) + " is out of range");
      }
      env.sequence = static_cast<std::int64_t>(u);
    } else if (seq->is_number_integer()) {
      env.sequence = seq->get<std::int64_t>();
    } else {
      return malformed(std::string("sequence: expected an integer >= 1, got ") +
                       (seq->is_number() ? shown_json(*seq) : seq->type_name()));
    }
    if (env.sequence < 1) {
      return malformed("sequence: expected an integer >= 1, got " + std::to_string(env.sequence));
    }
  } else {
    return *error;
  }

  if (auto e = identifier(doc, "event_type", env.event_type)) return *e;

  if (const json* at = field(doc, "occurred_at", error)) {
    if (!at->is_string()) {
      return malformed(std::string("occurred_at: expected an RFC 3339 string, got ") +
                       at->type_name());
    }
    try {
      env.occurred_at = core::parse_rfc3339(at->get_ref<const std::string&>());
    } catch (const core::TimeFormatError& e) {
      return malformed(std::string("occurred_at: ") + e.what());
    }
  } else {
    return *error;
  }

  if (const json* payload = field(doc, "payload", error)) {
    if (!payload->is_object()) {
      return malformed(std::string("payload: expected a JSON object, got ") + payload->type_name());
    }
    if (contains_nul(*payload)) {
      return malformed("payload: contains a NUL character (\\u0000), which cannot be stored");
    }
    env.payload = std::move(doc.at("payload"));
  } else {
    return *error;
  }
  return env;
}

nlohmann::json to_json(const Envelope& envelope) {
  return json{{"event_id", envelope.event_id},
              {"source", envelope.source},
              {"aggregate_type", envelope.aggregate_type},
              {"aggregate_id", envelope.aggregate_id},
              {"sequence", envelope.sequence},
              {"event_type", envelope.event_type},
              {"occurred_at", core::format_rfc3339(envelope.occurred_at)},
              {"payload", envelope.payload}};
}

std::variant<StatusChange, EnvelopeError> status_change_of(const Envelope& envelope) {
  const json& payload = envelope.payload;
  if (!payload.is_object()) {
    return malformed(std::string("payload: expected a JSON object, got ") + payload.type_name());
  }
  StatusChange change;
  const auto status = payload.find("status");
  if (status == payload.end()) return malformed("payload.status: missing");
  if (!status->is_string()) {
    return malformed(std::string("payload.status: expected a string, got ") + status->type_name());
  }
  change.status = status->get<std::string>();
  if (change.status.empty()) return malformed("payload.status: must not be empty");

  for (const auto& [name, out] : {std::pair<const char*, std::string*>{"reason", &change.reason},
                                  std::pair<const char*, std::string*>{"actor", &change.actor}}) {
    const auto it = payload.find(name);
    if (it == payload.end() || it->is_null()) continue;
    if (!it->is_string()) {
      return malformed(std::string("payload.") + name + ": expected a string, got " +
                       it->type_name());
    }
    *out = it->get<std::string>();
  }
  return change;
}

}  // namespace oss::domain
