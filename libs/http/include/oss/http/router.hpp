#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oss/http/message.hpp"

namespace oss::http {

class SseHub;

/// Maps (method, path) to handlers. Build it before giving it to the Server; it is not
/// modified afterwards, so matching is safe from any thread.
/// Pattern segments "{name}" capture exactly one non-empty path segment; literal segments win
/// over captures (/v1/orders/stuck beats /v1/orders/{id}). Matching is on percent-decoded
/// segments, so "%2F" inside a segment stays inside the captured value.
class Router {
 public:
  /// Throws std::invalid_argument on a malformed pattern or empty handler and
  /// std::logic_error when method+pattern is already registered.
  void add(std::string method, const std::string& pattern, Handler h);

  /// A GET endpoint streaming server-sent events from hub. authorize runs first (on the I/O
  /// strand, must not block); returning a Response (e.g. a 401 problem) refuses the stream.
  void add_sse(const std::string& pattern, std::shared_ptr<SseHub> hub,
               std::function<std::optional<Response>(const Request&)> authorize = {});

  struct Match {
    enum class Kind { found, not_found, method_not_allowed };
    Kind kind = Kind::not_found;
    const Handler* handler = nullptr;   // found, plain route
    std::shared_ptr<SseHub> sse_hub;    // found, SSE route
    const std::function<std::optional<Response>(const Request&)>* authorize = nullptr;
    std::map<std::string, std::string> params;
    std::string allow;                  // method_not_allowed: "GET, POST"
  };
  /// segments: the request path split at '/' and percent-decoded (see split_path).
  Match match(std::string_view method, const std::vector<std::string>& segments) const;

  /// "/a/b%20c" → {"a", "b c"}; nullopt when the path does not start with '/' or has a bad
  /// percent escape.
  static std::optional<std::vector<std::string>> split_path(std::string_view raw_path);

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{name}" for captures
    Handler handler;
    std::shared_ptr<SseHub> sse;
    std::function<std::optional<Response>(const Request&)> authorize;
  };
  void add_route(Route r);
  std::vector<Route> routes_;
};

}  // namespace oss::http
