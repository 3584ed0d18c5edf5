#include "oss/http/router.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "oss/http/server.hpp"
#include "oss/http/sse_hub.hpp"

namespace oss::http {
namespace {

Handler noop() {
  return [](const Request& /*req*/, const Respond& r) { r(Response{}); };
}

TEST(Router, SplitPathDecodesSegments) {
  EXPECT_EQ(Router::split_path("/"), std::vector<std::string>{});
  EXPECT_EQ(Router::split_path("/a/b%20c/d%2Fe"), (std::vector<std::string>{"a", "b c", "d/e"}));
  EXPECT_FALSE(Router::split_path("a/b"));
  EXPECT_FALSE(Router::split_path("/a%zz"));
  EXPECT_FALSE(Router::split_path("/a%2"));
}

TEST(Router, MatchesCapturesAndPrefersLiterals) {
  Router r;
  r.add("GET", "/v1/orders/{id}", noop());
  r.add("GET", "/v1/orders/stuck", noop());
  r.add("POST", "/v1/orders/{id}/status", noop());

  auto m = r.match("GET", *Router::split_path("/v1/orders/ORD-1"));
  ASSERT_EQ(m.kind, Router::Match::Kind::found);
  EXPECT_EQ(m.params.at("id"), "ORD-1");

  m = r.match("GET", *Router::split_path("/v1/orders/stuck"));
  ASSERT_EQ(m.kind, Router::Match::Kind::found);
  EXPECT_TRUE(m.params.empty());

  m = r.match("GET", *Router::split_path("/v1/orders/ORD-1/status"));
  EXPECT_EQ(m.kind, Router::Match::Kind::method_not_allowed);
  EXPECT_EQ(m.allow, "POST");

  EXPECT_EQ(r.match("GET", *Router::split_path("/v1/orders")).kind, Router::Match::Kind::not_found);
  EXPECT_EQ(r.match("GET", *Router::split_path("/v1/orders/")).kind, Router::Match::Kind::not_found);
}

TEST(Router, RejectsBadPatternsAndDuplicates) {
  Router r;
  EXPECT_THROW(r.add("GET", "no-slash", noop()), std::invalid_argument);
  EXPECT_THROW(r.add("GET", "/a/x{id}", noop()), std::invalid_argument);
  EXPECT_THROW(r.add("GET", "/a/{id}/{id}", noop()), std::invalid_argument);
  EXPECT_THROW(r.add("GET", "/a", Handler{}), std::invalid_argument);
  r.add("GET", "/a/{id}", noop());
  EXPECT_THROW(r.add("GET", "/a/{id}", noop()), std::logic_error);
  EXPECT_THROW(r.add_sse("/s", nullptr), std::invalid_argument);
  r.add_sse("/s", std::make_shared<SseHub>());
  EXPECT_EQ(r.match("POST", *Router::split_path("/s")).allow, "GET");
}

TEST(Message, ProblemIsRfc9457) {
  const Response r = problem(404, "no order ORD-1");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.content_type, "application/problem+json");
  const auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j.at("type"), "about:blank");
  EXPECT_EQ(j.at("title"), "Not Found");
  EXPECT_EQ(j.at("status"), 404);
  EXPECT_EQ(j.at("detail"), "no order ORD-1");
}

TEST(Message, HeaderLookupIsCaseInsensitive) {
  Request req;
  req.headers = {{"Content-Type", "text/plain"}, {"X-Trace", "1"}};
  EXPECT_EQ(req.header("content-type"), "text/plain");
  EXPECT_EQ(req.header("X-TRACE"), "1");
  EXPECT_FALSE(req.header("Authorization"));
}

TEST(ListenAddress, ParsesAndRejects) {
  EXPECT_EQ(parse_listen_address("127.0.0.1:8080").port(), 8080);
  EXPECT_EQ(parse_listen_address("[::1]:0").address().to_string(), "::1");
  EXPECT_EQ(parse_listen_address("localhost:9101").address().to_string(), "127.0.0.1");
  EXPECT_EQ(parse_listen_address("0.0.0.0:1").port(), 1);
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":8080", "127.0.0.1:65536", "127.0.0.1:8x",
                          "example.com:80", "::1:80", "[::1]80", "[::1"}) {
    EXPECT_THROW(parse_listen_address(bad), std::invalid_argument) << bad;
  }
}

}  // namespace
}  // namespace oss::http
