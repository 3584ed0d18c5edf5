#include "api/access.hpp"

namespace oss::api {
namespace {

http::Response unauthorized(std::string detail, const char* error) {
  http::Response r = http::problem(401, std::move(detail));
  // RFC 6750 §3: tell the client which scheme to use (and, when a token was sent, why it failed).
  r.headers.emplace_back("WWW-Authenticate",
                         error ? std::string("Bearer realm=\"order-status-service\", error=\"") + error + "\""
                               : std::string("Bearer realm=\"order-status-service\""));
  return r;
}

}  // namespace

AccessControl::AccessControl(std::optional<auth::TokenSet> tokens) : tokens_(std::move(tokens)) {}

std::variant<auth::Principal, http::Response> AccessControl::check(const http::Request& req, auth::Role required,
                                                                    bool allow_query_token) const {
  auth::Principal who;
  if (!tokens_) {
    who = auth::Principal{"anonymous", auth::Role::viewer};
  } else {
    std::optional<std::string_view> token;
    const auto header = req.header("Authorization");
    if (header) {
      token = auth::bearer_token(*header);
      if (!token)
        return unauthorized("the Authorization header must be 'Bearer <token>'", "invalid_request");
    } else if (allow_query_token) {
      if (const auto it = req.query.find("access_token"); it != req.query.end()) {
        if (it->second.empty()) return unauthorized("the access_token parameter is empty", "invalid_request");
        token = it->second;
      }
    }
    if (!token)
      return unauthorized(allow_query_token
                              ? "a token is required: send 'Authorization: Bearer <token>' (or ?access_token=)"
                              : "a token is required: send 'Authorization: Bearer <token>'",
                          nullptr);
    auto principal = tokens_->authenticate(*token);
    if (!principal) return unauthorized("the token is not valid", "invalid_token");
    who = std::move(*principal);
  }
  if (!auth::role_allows(who.role, required)) {
    if (!tokens_)
      return http::problem(403, "this service runs without --tokens: every caller is a viewer and may only read; "
                                "start it with --tokens to allow operators to make changes");
    return http::problem(403, "the token '" + who.name + "' has the role " + std::string(auth::to_string(who.role)) +
                                  "; this needs the role " + std::string(auth::to_string(required)));
  }
  return who;
}

}  // namespace oss::api
