#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "oss/http/message.hpp"
#include "test_server.hpp"

namespace oss::http::test {
namespace {

nlohmann::json body_json(const HttpResponse& r) { return nlohmann::json::parse(r.body()); }

Router echo_router() {
  Router r;
  r.add("GET", "/v1/orders/{id}", [](Request req, const Respond& respond) {
    respond(json_response(200, {{"route", "order"},
                                {"id", req.params.at("id")},
                                {"path", req.path},
                                {"target", req.target},
                                {"query", req.query},
                                {"trace", req.header("x-trace").value_or("")},
                                {"remote_has_port", req.remote_address.find(':') != std::string::npos}}));
  });
  r.add("GET", "/v1/orders/stuck", [](const Request&, const Respond& respond) { respond(json_response(200, {{"route", "stuck"}})); });
  r.add("POST", "/v1/orders/{id}/status", [](Request req, const Respond& respond) {
    respond(json_response(201, {{"id", req.params.at("id")}, {"body", req.body}}));
  });
  r.add("GET", "/throw", [](const Request&, const Respond&) { throw std::runtime_error("boom"); });
  return r;
}

TEST(Server, RoutesWithParamsAndDecodedQuery) {
  TestServer s(echo_router());
  Client c(s.port());
  c.send(request("GET", "/v1/orders/ORD%201?status=PRICE_CALCULATED&note=a+b%26c&x=1&x=2&flag",
                 {}, "X-Trace: abc\r\n"));
  auto res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ((*res)[bhttp::field::content_type], "application/json");
  EXPECT_FALSE((*res)[bhttp::field::date].empty());
  const auto j = body_json(*res);
  EXPECT_EQ(j.at("route"), "order");
  EXPECT_EQ(j.at("id"), "ORD 1");
  EXPECT_EQ(j.at("path"), "/v1/orders/ORD 1");
  EXPECT_EQ(j.at("target"), "/v1/orders/ORD%201?status=PRICE_CALCULATED&note=a+b%26c&x=1&x=2&flag");
  EXPECT_EQ(j.at("query").at("status"), "PRICE_CALCULATED");
  EXPECT_EQ(j.at("query").at("note"), "a b&c");
  EXPECT_EQ(j.at("query").at("x"), "2");
  EXPECT_EQ(j.at("query").at("flag"), "");
  EXPECT_EQ(j.at("trace"), "abc");
  EXPECT_EQ(j.at("remote_has_port"), true);

  c.send(request("GET", "/v1/orders/stuck"));
  res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(body_json(*res).at("route"), "stuck");

  c.send(request("POST", "/v1/orders/A/status", R"({"status":"X"})"));
  res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 201u);
  EXPECT_EQ(body_json(*res).at("body"), R"({"status":"X"})");
}

TEST(Server, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  TestServer s(echo_router());
  Client c(s.port());
  c.send(request("GET", "/nope"));
  auto res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 404u);
  EXPECT_EQ((*res)[bhttp::field::content_type], "application/problem+json");
  EXPECT_EQ(body_json(*res).at("status"), 404);
  EXPECT_EQ(body_json(*res).at("title"), "Not Found");

  c.send(request("DELETE", "/v1/orders/A"));
  res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 405u);
  EXPECT_EQ((*res)[bhttp::field::allow], "GET");
  EXPECT_EQ((*res)[bhttp::field::connection], "keep-alive");
}

TEST(Server, HandlerMayRespondFromAnotherThreadLater) {
  std::mutex mu;
  std::vector<std::thread> workers;
  Router r;
  r.add("GET", "/slow", [&](Request req, Respond respond) {
    std::lock_guard lock(mu);
    workers.emplace_back([req = std::move(req), respond = std::move(respond)] {
      std::this_thread::sleep_for(150ms);
      respond(json_response(200, {{"path", req.path}}));
      respond(json_response(500, {}));  // a second call is ignored
    });
  });
  {
    TestServer s(std::move(r));
    struct JoinWorkers {  // before the server goes: workers hold Respond callbacks
      explicit JoinWorkers(std::vector<std::thread>& t) : threads(t) {}
      JoinWorkers(const JoinWorkers&) = delete;
      JoinWorkers& operator=(const JoinWorkers&) = delete;
      std::vector<std::thread>& threads;
      ~JoinWorkers() {
        for (auto& t : threads)
          if (t.joinable()) t.join();
      }
    } join_workers{workers};
    Client c(s.port());
    const auto start = std::chrono::steady_clock::now();
    c.send(request("GET", "/slow"));
    auto res = c.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 200u);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
    // The connection is still usable after the asynchronous answer.
    c.send(request("GET", "/slow"));
    res = c.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 200u);
  }
}

TEST(Server, KeepAliveServesSeveralRequestsAndHonoursConnectionClose) {
  TestServer s(echo_router());
  Client c(s.port());
  for (int i = 0; i < 2; ++i) {
    c.send(request("GET", "/v1/orders/" + std::to_string(i)));
    auto res = c.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 200u);
    EXPECT_EQ((*res)[bhttp::field::connection], "keep-alive");
    EXPECT_EQ(body_json(*res).at("id"), std::to_string(i));
  }
  c.send(request("GET", "/v1/orders/x", {}, "Connection: close\r\n"));
  auto res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ((*res)[bhttp::field::connection], "close");
  EXPECT_TRUE(c.wait_closed());
}

TEST(Server, PipelinedRequestsAreAnsweredInOrder) {
  TestServer s(echo_router());
  Client c(s.port());
  c.send(request("GET", "/v1/orders/1") + request("GET", "/v1/orders/2"));
  for (const char* id : {"1", "2"}) {
    auto res = c.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(body_json(*res).at("id"), id);
  }
}

TEST(Server, OversizedBodyIs413) {
  ServerOptions o;
  o.body_limit = 1024;
  TestServer s(echo_router(), o);
  Client c(s.port());
  c.try_send(request("POST", "/v1/orders/A/status", std::string(100 * std::size_t{1024}, 'x')));
  auto res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 413u);
  EXPECT_EQ((*res)[bhttp::field::content_type], "application/problem+json");
  EXPECT_EQ((*res)[bhttp::field::connection], "close");
  EXPECT_TRUE(c.wait_closed());
}

TEST(Server, OversizedHeadersAre431) {
  ServerOptions o;
  o.header_limit = 1024;
  TestServer s(echo_router(), o);
  Client c(s.port());
  c.try_send(request("GET", "/v1/orders/A", {}, "X-Big: " + std::string(4096, 'a') + "\r\n"));
  auto res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 431u);
  EXPECT_TRUE(c.wait_closed());
}

TEST(Server, MalformedRequestIs400ThenClose) {
  TestServer s(echo_router());
  Client c(s.port());
  c.send("GET /v1/orders/A HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
  auto res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 400u);
  EXPECT_EQ((*res)[bhttp::field::connection], "close");
  EXPECT_TRUE(c.wait_closed());

  Client c2(s.port());
  c2.send("GET /v1/orders/%zz HTTP/1.1\r\nHost: x\r\n\r\n");
  res = c2.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 400u);
}

TEST(Server, SlowClientIsDisconnectedAfterReadTimeout) {
  ServerOptions o;
  o.read_timeout = 1s;
  TestServer s(echo_router(), o);
  Client c(s.port());
  const auto start = std::chrono::steady_clock::now();
  c.send("GET /v1/orders/A HTTP/1.1\r\nHost: x\r\nX-Half: ");  // ... and stall
  auto res = c.read_response(4000ms);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 408u);
  EXPECT_GE(elapsed, 900ms);
  EXPECT_LT(elapsed, 3500ms);
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(eventually([&] { return s.server().connection_count() == 0; }));
}

TEST(Server, IdleKeepAliveConnectionIsClosedQuietly) {
  ServerOptions o;
  o.read_timeout = 5s;
  o.idle_timeout = 1s;
  TestServer s(echo_router(), o);
  Client c(s.port());
  c.send(request("GET", "/v1/orders/A"));
  ASSERT_TRUE(c.read_response());
  EXPECT_TRUE(c.wait_closed(4000ms));
}

TEST(Server, HandlerExceptionIs500AndServerKeepsServing) {
  TestServer s(echo_router());
  Client c(s.port());
  c.send(request("GET", "/throw"));
  auto res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 500u);
  EXPECT_EQ((*res)[bhttp::field::content_type], "application/problem+json");
  c.send(request("GET", "/v1/orders/A"));
  res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
}

TEST(Server, HandlerThatNeverRespondsGets503) {
  Respond kept;
  std::mutex mu;
  Router r;
  r.add("GET", "/never", [&](const Request&, Respond respond) {
    std::lock_guard lock(mu);
    kept = std::move(respond);
  });
  ServerOptions o;
  o.handler_timeout = 1s;
  TestServer s(std::move(r), o);
  Client c(s.port());
  c.send(request("GET", "/never"));
  auto res = c.read_response(4000ms);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 503u);
  {
    std::lock_guard lock(mu);
    kept(json_response(200, {}));  // too late: dropped, must not corrupt the connection
    kept = nullptr;
  }
  c.send(request("GET", "/nope"));
  res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 404u);
}

TEST(Server, MaxConnectionsRefusesExtraConnectionsWith503) {
  ServerOptions o;
  o.max_connections = 1;
  TestServer s(echo_router(), o);
  Client first(s.port());
  first.send(request("GET", "/v1/orders/A"));
  ASSERT_TRUE(first.read_response());
  Client second(s.port());
  auto res = second.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 503u);
}

TEST(Server, StartFailsClearlyWhenPortInUse) {
  TestServer s(echo_router());
  asio::io_context io;
  ServerOptions o;
  o.listen = "127.0.0.1:" + std::to_string(s.port());
  Server second(io, o, Router{});
  try {
    second.start();
    FAIL() << "expected std::system_error";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find(o.listen), std::string::npos) << e.what();
  }
  ServerOptions bad;
  bad.listen = "nonsense";
  EXPECT_THROW(Server(io, bad, Router{}), std::invalid_argument);
}

TEST(Server, StopClosesOpenConnections) {
  auto s = std::make_unique<TestServer>(echo_router());
  Client c(s->port());
  c.send(request("GET", "/v1/orders/A"));
  ASSERT_TRUE(c.read_response());
  s->server().stop();
  EXPECT_TRUE(c.wait_closed());
  s.reset();  // joins the io thread: nothing left running
}

}  // namespace
}  // namespace oss::http::test
