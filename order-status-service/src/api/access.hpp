#pragma once
/// Who may call which endpoint (CONTRACT "HTTP API", authentication): maps the Authorization
/// header (or, on /v1/stream only, the access_token query parameter) to a principal, or to the
/// 401/403 problem to answer. Never logs or echoes a token.
#include <optional>
#include <string>
#include <variant>

#include "auth/tokens.hpp"
#include "oss/http/message.hpp"

namespace oss::api {

/// Immutable after construction; check() is safe from any thread and never blocks.
class AccessControl {
 public:
  /// No tokens: the open, loopback-only mode where every caller is the viewer "anonymous"
  /// (a presented token is ignored). With tokens: every caller needs a valid one.
  explicit AccessControl(std::optional<auth::TokenSet> tokens = std::nullopt);

  bool enabled() const { return tokens_.has_value(); }

  /// The caller, or the problem response: 401 (with WWW-Authenticate: Bearer) when the token is
  /// missing, malformed or unknown; 403 when the caller's role lacks `required`.
  /// allow_query_token: also accept `?access_token=` (for EventSource, which cannot send
  /// headers); the header wins when both are present.
  std::variant<auth::Principal, http::Response> check(const http::Request& req, auth::Role required,
                                                      bool allow_query_token = false) const;

 private:
  std::optional<auth::TokenSet> tokens_;
};

}  // namespace oss::api
