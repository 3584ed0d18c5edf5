#pragma once
/// API tokens (CONTRACT "HTTP API"): who may call the API and in which role.
///
/// The tokens file holds only SHA-256 hashes of the tokens, never the tokens themselves:
///
///     [{"name": "ops-anna", "role": "operator", "sha256": "<hex SHA-256 of the token>"}]
///
/// `viewer` may read (GET); `operator` may also change (POST). Pure logic plus the file read at
/// start; no HTTP types here (api/access.* maps this to 401/403 responses).
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace oss::auth {

/// A tokens file (or document) that cannot be used; what() names the entry and the problem.
struct TokenFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class Role { viewer, operator_role };

std::string_view to_string(Role role);
std::optional<Role> role_from_string(std::string_view text);
/// Does `granted` include everything `required` may do? (operator ⊇ viewer)
bool role_allows(Role granted, Role required);

/// Who is calling: the token's name (for audit records and logs; never the token) and role.
struct Principal {
  std::string name;
  Role role = Role::viewer;
  bool operator==(const Principal&) const = default;
};

/// SHA-256 of `data`, 32 raw bytes (OpenSSL EVP).
std::string sha256(std::string_view data);
/// Lower-case hex of SHA-256 of `data` (what the tokens file stores).
std::string sha256_hex(std::string_view data);

/// Constant-time equality (OpenSSL CRYPTO_memcmp): the time taken does not depend on where the
/// inputs differ. Inputs of different length compare unequal at once; the length is not secret
/// here (we only ever compare 32-byte digests).
bool constant_time_equal(std::string_view a, std::string_view b);

/// The `Authorization` header's bearer token: "Bearer <token>" (scheme case-insensitive, one
/// or more spaces). nullopt for a missing token, another scheme or a malformed value.
std::optional<std::string_view> bearer_token(std::string_view authorization_header);

/// The valid tokens, as hashes. Immutable after construction; authenticate() is safe from any
/// number of threads.
class TokenSet {
 public:
  struct Entry {
    std::string name;
    Role role = Role::viewer;
    std::string digest;  // 32 raw bytes
  };

  /// Validates a parsed tokens document (array of {name, role, sha256}). Throws TokenFileError
  /// naming the entry and problem: not an array, empty, unknown or missing keys, empty or
  /// duplicate name, unknown role, sha256 not 64 hex digits, the same hash twice.
  static TokenSet parse(std::string_view json_text);
  /// Reads and parses a file; errors are prefixed with "tokens file '<path>': ".
  static TokenSet load_file(const std::string& path);

  /// The principal whose hash matches SHA-256(token), or nullopt. Hashes the presented token
  /// once and compares it with every entry in constant time, without stopping at a match, so
  /// timing reveals neither which entry matched nor how much of a hash did.
  std::optional<Principal> authenticate(std::string_view token) const;

  std::size_t size() const { return entries_.size(); }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
};

}  // namespace oss::auth
