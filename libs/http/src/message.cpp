#include "oss/http/message.hpp"

#include <boost/beast/http/status.hpp>

#include <algorithm>
#include <cctype>

namespace oss::http {

namespace {
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}
}  // namespace

std::optional<std::string> Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return std::nullopt;
}

std::string_view reason_phrase(unsigned status) {
  const auto r = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  if (r.empty() || r == "<unknown-status>") return "Unknown Status";
  return {r.data(), r.size()};
}

Response json_response(unsigned status, const nlohmann::json& body) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  // replace: never throw on invalid UTF-8 coming from data.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Response problem(unsigned status, std::string detail) {
  nlohmann::json j = {{"type", "about:blank"},
                      {"title", std::string(reason_phrase(status))},
                      {"status", status},
                      {"detail", std::move(detail)}};
  Response r = json_response(status, j);
  r.content_type = "application/problem+json";
  return r;
}

}  // namespace oss::http
