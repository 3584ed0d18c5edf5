#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace oss::http {

/// One parsed HTTP request, handed to a Handler by value.
struct Request {
  std::string method;                          // "GET"
  std::string target;                          // raw target, e.g. "/v1/orders/A%201?x=1"
  std::string path;                            // percent-decoded path without query
  std::map<std::string, std::string> query;    // percent-decoded query params ('+' is a space; last wins)
  std::map<std::string, std::string> params;   // from route patterns like /v1/orders/{id}
  std::string body;
  std::string remote_address;                  // "127.0.0.1:54321"
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order

  /// First header with that name, compared case-insensitively.
  std::optional<std::string> header(std::string_view name) const;
};

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  /// Extra headers. Content-Length, Transfer-Encoding, Connection and Date are set by the
  /// server and ignored here; values containing CR or LF are dropped.
  std::vector<std::pair<std::string, std::string>> headers;
};

Response json_response(unsigned status, const nlohmann::json& body);

/// RFC 9457 application/problem+json:
/// {"type":"about:blank","title":<reason phrase>,"status":<status>,"detail":<detail>}
Response problem(unsigned status, std::string detail);

/// The standard reason phrase ("Not Found"), or "Unknown Status".
std::string_view reason_phrase(unsigned status);

/// Completes a request. Call exactly once, from any thread; later calls are ignored.
using Respond = std::function<void(Response)>;
/// Runs on the connection's I/O strand: it must not block. Do the work elsewhere and call
/// Respond when done. An exception thrown from the handler becomes a 500 problem.
using Handler = std::function<void(Request, Respond)>;

}  // namespace oss::http
