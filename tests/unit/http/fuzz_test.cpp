// A bounded, deterministic fuzz loop: mutated and random requests must never crash or hang
// the server, and it must still answer afterwards.
#include <gtest/gtest.h>

#include <random>

#include "test_server.hpp"

namespace oss::http::test {
namespace {

std::string mutate(std::string s, std::mt19937& rng) {
  std::uniform_int_distribution<int> op(0, 6);
  std::uniform_int_distribution<int> byte(0, 255);
  const int rounds = std::uniform_int_distribution<int>(1, 6)(rng);
  for (int r = 0; r < rounds && !s.empty(); ++r) {
    std::uniform_int_distribution<std::size_t> pos(0, s.size() - 1);
    switch (op(rng)) {
      case 0: s[pos(rng)] = static_cast<char>(byte(rng)); break;                             // flip a byte
      case 1: s.insert(pos(rng), 1, static_cast<char>(byte(rng))); break;                   // insert a byte
      case 2: s.erase(pos(rng), std::uniform_int_distribution<std::size_t>(1, 8)(rng)); break;  // delete
      case 3: s.resize(pos(rng)); break;                                                    // truncate
      case 4: s.insert(pos(rng), "\r\n"); break;
      case 5: s.insert(pos(rng), std::string(std::uniform_int_distribution<std::size_t>(1, 300)(rng), 'A')); break;
      default: {
        const auto p = pos(rng);
        s.insert(p, s.substr(p, 20));  // duplicate a slice
      }
    }
  }
  return s;
}

TEST(Fuzz, GarbageNeverCrashesOrHangsTheServer) {
  Router router;
  router.add("GET", "/v1/orders/{id}", [](Request req, const Respond& respond) {
    respond(json_response(200, {{"id", req.params.at("id")}, {"q", req.query}}));
  });
  router.add("POST", "/v1/orders/{id}/status", [](const Request& req, const Respond& respond) {
    respond(json_response(200, {{"n", req.body.size()}}));
  });
  ServerOptions o;
  o.read_timeout = 2s;
  o.body_limit = 4096;
  o.header_limit = 2048;
  TestServer s(std::move(router), o);

  const std::vector<std::string> seeds = {
      "GET /v1/orders/ORD-1?status=A&x=%41 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
      "POST /v1/orders/ORD-1/status HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n{\"status\":\"DONE\"}",
      "POST /v1/orders/x/status HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "GET /v1/orders/a%2Fb HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
  };
  std::mt19937 rng(20240601);  // NOLINT(cert-msc32-c,cert-msc51-cpp): fixed seed, failures reproduce
  std::uniform_int_distribution<int> byte(0, 255);
  constexpr int kCases = 2000;
  int closed_in_time = 0;
  for (int i = 0; i < kCases; ++i) {
    std::string input;
    if (i % 10 == 9) {  // pure noise
      input.resize(std::uniform_int_distribution<std::size_t>(1, 512)(rng));
      for (auto& ch : input) ch = static_cast<char>(byte(rng));
    } else {
      input = mutate(seeds[static_cast<std::size_t>(i) % seeds.size()], rng);
    }
    Client c(s.port());
    c.try_send(input);
    c.shutdown_send();  // EOF lets the server finish every case promptly
    if (c.wait_closed(3000ms)) ++closed_in_time;
    else ADD_FAILURE() << "case " << i << " left the connection open";
  }
  EXPECT_EQ(closed_in_time, kCases);

  Client c(s.port());
  c.send(request("GET", "/v1/orders/still-alive"));
  auto res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_TRUE(eventually([&] { return s.server().connection_count() <= 1; }));
}

}  // namespace
}  // namespace oss::http::test
