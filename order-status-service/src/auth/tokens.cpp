#include "auth/tokens.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <system_error>

namespace oss::auth {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw TokenFileError(where.empty() ? what : where + ": " + what);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> decode_hex_digest(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  std::string out(32, '\0');
  for (std::size_t i = 0; i < 32; ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>(static_cast<unsigned char>(hi * 16 + lo));
  }
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (std::tolower(x) != std::tolower(y)) return false;
  }
  return true;
}

std::string entry_name(std::size_t i) { return "[" + std::to_string(i) + "]"; }

/// Rejects a key repeated inside one object (nlohmann would silently keep the last one, and a
/// tokens file with two "role" keys is a mistake worth stopping for).
class DuplicateKeyGuard {
 public:
  bool operator()(int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        keys_.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys_.empty()) keys_.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys_.empty() && parsed.is_string() && !keys_.back().insert(parsed.get<std::string>()).second)
          throw TokenFileError("duplicate key \"" + parsed.get<std::string>() + "\" in one entry");
        break;
      default:
        break;
    }
    return true;
  }

 private:
  std::vector<std::set<std::string>> keys_;
};

}  // namespace

std::string_view to_string(Role role) { return role == Role::operator_role ? "operator" : "viewer"; }

std::optional<Role> role_from_string(std::string_view text) {
  if (text == "viewer") return Role::viewer;
  if (text == "operator") return Role::operator_role;
  return std::nullopt;
}

bool role_allows(Role granted, Role required) {
  return required == Role::viewer || granted == Role::operator_role;
}

std::string sha256(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  // EVP_Digest: the one-shot EVP interface (the low-level SHA256() is deprecated in OpenSSL 3).
  if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr) != 1 || len != 32)
    throw std::runtime_error("OpenSSL EVP_Digest(SHA-256) failed");
  return std::string(reinterpret_cast<const char*>(md.data()), len);
}

std::string sha256_hex(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::string raw = sha256(data);
  std::string out;
  out.reserve(raw.size() * 2);
  for (const char c : raw) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0x0f]);
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  // CRYPTO_memcmp: OpenSSL's constant-time comparison (no early exit at the first difference).
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<std::string_view> bearer_token(std::string_view header) {
  while (!header.empty() && is_space(header.front())) header.remove_prefix(1);
  while (!header.empty() && is_space(header.back())) header.remove_suffix(1);
  constexpr std::string_view kScheme = "Bearer";
  if (header.size() <= kScheme.size() || !iequals(header.substr(0, kScheme.size()), kScheme) ||
      !is_space(header[kScheme.size()]))
    return std::nullopt;
  header.remove_prefix(kScheme.size());
  while (!header.empty() && is_space(header.front())) header.remove_prefix(1);
  if (header.empty()) return std::nullopt;
  for (const char c : header)
    if (is_space(c) || static_cast<unsigned char>(c) < 0x21 || c == 0x7f) return std::nullopt;
  return header;
}

TokenSet TokenSet::parse(std::string_view text) {
  json doc;
  try {
    DuplicateKeyGuard guard;
    doc = json::parse(text.begin(), text.end(),
                      [&guard](int depth, json::parse_event_t event, json& parsed) { return guard(depth, event, parsed); });
  } catch (const json::exception& e) {
    fail("", std::string("not valid JSON: ") + e.what());
  }
  if (!doc.is_array())
    fail("", std::string("expected a JSON array of {\"name\", \"role\", \"sha256\"} objects, got ") + doc.type_name());
  if (doc.empty()) fail("", "no tokens: the array is empty, so nobody could call the API");
  TokenSet set;
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const std::string where = entry_name(i);
    const json& e = doc[i];
    if (!e.is_object()) fail(where, std::string("expected an object, got ") + e.type_name());
    for (const auto& [key, value] : e.items()) {
      (void)value;
      if (key != "name" && key != "role" && key != "sha256") {
        std::string path = where;
        path += '.';
        path += key;
        fail(path, "unknown key (expected name, role, sha256)");
      }
    }
    auto text_at = [&](const char* key) -> std::string {
      const auto it = e.find(key);
      if (it == e.end()) fail(where + "." + key, "missing");
      if (!it->is_string()) fail(where + "." + key, std::string("expected a string, got ") + it->type_name());
      return it->get<std::string>();
    };
    Entry entry;
    entry.name = text_at("name");
    if (entry.name.empty()) fail(where + ".name", "must not be empty");
    for (const char c : entry.name)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        fail(where + ".name", "must not contain control characters");
    const std::string role = text_at("role");
    const auto r = role_from_string(role);
    if (!r) fail(where + ".role", "unknown role \"" + role + "\" (expected \"viewer\" or \"operator\")");
    entry.role = *r;
    const std::string hex = text_at("sha256");
    auto digest = decode_hex_digest(hex);
    if (!digest)
      fail(where + ".sha256", "expected 64 hexadecimal digits (the SHA-256 of the token, e.g. from "
                              "`printf %s TOKEN | sha256sum`), got " + std::to_string(hex.size()) + " characters");
    entry.digest = std::move(*digest);
    for (std::size_t k = 0; k < set.entries_.size(); ++k) {
      if (set.entries_[k].name == entry.name)
        fail(where + ".name", "duplicate name \"" + entry.name + "\" (already at " + entry_name(k) + ")");
      if (set.entries_[k].digest == entry.digest)
        fail(where + ".sha256", "the same token hash as " + entry_name(k) + " (each token must be unique)");
    }
    set.entries_.push_back(std::move(entry));
  }
  return set;
}

TokenSet TokenSet::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TokenFileError("tokens file '" + path + "': cannot open: " + std::generic_category().message(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw TokenFileError("tokens file '" + path + "': cannot read: " + std::generic_category().message(errno));
  try {
    return parse(buf.str());
  } catch (const TokenFileError& e) {
    throw TokenFileError("tokens file '" + path + "': " + e.what());
  }
}

std::optional<Principal> TokenSet::authenticate(std::string_view token) const {
  if (token.empty()) return std::nullopt;
  const std::string presented = sha256(token);
  const Entry* match = nullptr;
  for (const auto& e : entries_) {
    // Every entry is compared (no break): the loop's duration does not depend on which one
    // matches. Hashing first also makes the comparison independent of the token's length.
    const bool equal = constant_time_equal(presented, e.digest);
    if (equal) match = &e;
  }
  if (match == nullptr) return std::nullopt;
  return Principal{match->name, match->role};
}

}  // namespace oss::auth
