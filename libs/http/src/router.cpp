#include "oss/http/router.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

#include "oss/http/sse_hub.hpp"
#include "url.hpp"

namespace oss::http {

namespace {
bool is_capture(const std::string& seg) { return seg.size() > 2 && seg.front() == '{' && seg.back() == '}'; }
}  // namespace

std::optional<std::vector<std::string>> Router::split_path(std::string_view raw) {
  if (raw.empty() || raw.front() != '/') return std::nullopt;
  std::vector<std::string> out;
  std::size_t pos = 1;
  while (true) {
    const auto next = raw.find('/', pos);
    const auto piece = raw.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
    auto decoded = detail::percent_decode(piece, false);
    if (!decoded) return std::nullopt;
    out.push_back(std::move(*decoded));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  // "/" is the root: no segments.
  if (out.size() == 1 && out.front().empty()) out.clear();
  return out;
}

void Router::add_route(Route r) {
  for (const auto& existing : routes_)
    if (existing.method == r.method && existing.segments == r.segments)
      throw std::logic_error("route " + r.method + " already registered for this pattern");
  routes_.push_back(std::move(r));
}

namespace {
std::vector<std::string> parse_pattern(const std::string& pattern) {
  if (pattern.empty() || pattern.front() != '/')
    throw std::invalid_argument("route pattern must start with '/': '" + pattern + "'");
  auto segs = Router::split_path(pattern);
  if (!segs) throw std::invalid_argument("route pattern has a bad percent escape: '" + pattern + "'");
  std::set<std::string> names;
  for (const auto& s : *segs) {
    const bool has_brace = s.find_first_of("{}") != std::string::npos;
    if (has_brace && !is_capture(s))
      throw std::invalid_argument("route pattern segment must be literal or a whole {name}: '" + pattern + "'");
    if (is_capture(s) && !names.insert(s).second)
      throw std::invalid_argument("route pattern repeats a capture: '" + pattern + "'");
  }
  return *segs;
}
}  // namespace

void Router::add(std::string method, const std::string& pattern, Handler h) {
  if (method.empty()) throw std::invalid_argument("route method must not be empty");
  if (!h) throw std::invalid_argument("route " + method + " " + pattern + ": empty handler");
  add_route(Route{std::move(method), parse_pattern(pattern), std::move(h), nullptr, {}});
}

void Router::add_sse(const std::string& pattern, std::shared_ptr<SseHub> hub,
                     std::function<std::optional<Response>(const Request&)> authorize) {
  if (!hub) throw std::invalid_argument("SSE route " + pattern + ": null hub");
  add_route(Route{"GET", parse_pattern(pattern), {}, std::move(hub), std::move(authorize)});
}

Router::Match Router::match(std::string_view method, const std::vector<std::string>& segments) const {
  Match m;
  const Route* best = nullptr;
  std::vector<bool> best_literals;
  std::set<std::string> allowed;
  for (const auto& r : routes_) {
    if (r.segments.size() != segments.size()) continue;
    std::vector<bool> literals(segments.size());
    bool ok = true;
    for (std::size_t i = 0; i < segments.size() && ok; ++i) {
      if (is_capture(r.segments[i])) {
        ok = !segments[i].empty();
      } else {
        ok = r.segments[i] == segments[i];
        literals[i] = true;
      }
    }
    if (!ok) continue;
    allowed.insert(r.method);
    if (r.method != method) continue;
    // The most literal pattern wins, comparing from the left.
    if (best == nullptr || literals > best_literals) {
      best = &r;
      best_literals = std::move(literals);
    }
  }
  if (best == nullptr) {
    if (allowed.empty()) return m;
    m.kind = Match::Kind::method_not_allowed;
    for (const auto& a : allowed) {
      if (!m.allow.empty()) m.allow += ", ";
      m.allow += a;
    }
    return m;
  }
  m.kind = Match::Kind::found;
  for (std::size_t i = 0; i < segments.size(); ++i)
    if (is_capture(best->segments[i]))
      m.params[best->segments[i].substr(1, best->segments[i].size() - 2)] = segments[i];
  if (best->sse) {
    m.sse_hub = best->sse;
    if (best->authorize) m.authorize = &best->authorize;
  } else {
    m.handler = &best->handler;
  }
  return m;
}

}  // namespace oss::http
