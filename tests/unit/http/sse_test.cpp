#include <gtest/gtest.h>

#include "oss/http/sse_hub.hpp"
#include "test_server.hpp"

namespace oss::http::test {
namespace {

struct Event {
  std::string id;
  std::string type;
  std::string data;
};

// Next event, skipping keepalive comments.
std::optional<Event> read_event(Client& c, std::chrono::milliseconds timeout = 5000ms) {
  while (true) {
    auto frame = c.read_until("\n\n", timeout);
    if (!frame) return std::nullopt;
    if (frame->front() == ':') continue;
    Event e;
    std::size_t pos = 0;
    while (pos < frame->size()) {
      const auto nl = frame->find('\n', pos);
      const std::string line = frame->substr(pos, nl - pos);
      pos = nl + 1;
      if (line.rfind("id: ", 0) == 0) e.id = line.substr(4);
      else if (line.rfind("event: ", 0) == 0) e.type = line.substr(7);
      else if (line.rfind("data: ", 0) == 0) e.data += (e.data.empty() ? "" : "\n") + line.substr(6);
    }
    return e;
  }
}

void open_stream(Client& c, std::string_view extra_headers = {}) {
  c.send(request("GET", "/v1/stream", {}, extra_headers));
  auto head = c.read_until("\r\n\r\n");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->rfind("HTTP/1.1 200", 0), 0u) << *head;
  EXPECT_NE(head->find("Content-Type: text/event-stream"), std::string::npos) << *head;
}

Router stream_router(const std::shared_ptr<SseHub>& hub) {
  Router r;
  r.add_sse("/v1/stream", hub, [](const Request& req) -> std::optional<Response> {
    if (req.header("X-Deny")) return problem(401, "no token");
    return std::nullopt;
  });
  return r;
}

TEST(Sse, ClientReceivesEventsInOrderWithIds) {
  auto hub = std::make_shared<SseHub>(100, 100);
  TestServer s(stream_router(hub));
  Client c(s.port());
  open_stream(c);
  ASSERT_TRUE(eventually([&] { return hub->client_count() == 1; }));
  for (int i = 1; i <= 5; ++i) hub->publish("order.status_changed", R"({"n":)" + std::to_string(i) + "}");
  hub->publish("multi", "line1\nline2");
  for (int i = 1; i <= 5; ++i) {
    auto e = read_event(c);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->id, std::to_string(i));
    EXPECT_EQ(e->type, "order.status_changed");
    EXPECT_EQ(e->data, R"({"n":)" + std::to_string(i) + "}");
  }
  auto e = read_event(c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->data, "line1\nline2");
  EXPECT_THROW(hub->publish("bad\ntype", "{}"), std::invalid_argument);
}

TEST(Sse, ReconnectWithLastEventIdGetsMissedEvents) {
  auto hub = std::make_shared<SseHub>(5, 100);
  TestServer s(stream_router(hub));
  {
    Client c(s.port());
    open_stream(c);
    ASSERT_TRUE(eventually([&] { return hub->client_count() == 1; }));
    for (int i = 1; i <= 3; ++i) hub->publish("e", std::to_string(i));
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(read_event(c));
  }
  ASSERT_TRUE(eventually([&] { return hub->client_count() == 0; }));
  hub->publish("e", "4");
  hub->publish("e", "5");

  Client again(s.port());
  open_stream(again, "Last-Event-ID: 3\r\n");
  ASSERT_TRUE(eventually([&] { return hub->client_count() == 1; }));
  hub->publish("e", "6");
  for (const char* want : {"4", "5", "6"}) {
    auto e = read_event(again);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->id, want);
  }

  // Id 1 has left the 5-event history: that client starts live.
  for (int i = 7; i <= 12; ++i) hub->publish("e", std::to_string(i));
  Client stale(s.port());
  open_stream(stale, "Last-Event-ID: 1\r\n");
  ASSERT_TRUE(eventually([&] { return hub->client_count() == 2; }));
  hub->publish("e", "13");
  auto e = read_event(stale);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "13");
}

TEST(Sse, AuthorizeCanRefuseTheStream) {
  auto hub = std::make_shared<SseHub>();
  TestServer s(stream_router(hub));
  Client c(s.port());
  c.send(request("GET", "/v1/stream", {}, "X-Deny: 1\r\n"));
  auto res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 401u);
  EXPECT_EQ(hub->client_count(), 0u);
}

TEST(Sse, IdleClientGetsKeepaliveComments) {
  auto hub = std::make_shared<SseHub>(10, 10, std::chrono::seconds(1));
  TestServer s(stream_router(hub));
  Client c(s.port());
  open_stream(c);
  auto frame = c.read_until("\n\n", 3000ms);
  ASSERT_TRUE(frame);
  EXPECT_EQ(*frame, ":\n\n");
}

TEST(Sse, SlowClientIsDisconnectedAndDoesNotBlockOthers) {
  auto hub = std::make_shared<SseHub>(10, 8);
  TestServer s(stream_router(hub));
  Client slow(s.port(), 4096);  // small receive window; it never reads after the header
  open_stream(slow);
  Client fast(s.port());
  open_stream(fast);
  ASSERT_TRUE(eventually([&] { return hub->client_count() == 2; }));

  const std::string payload = "\"" + std::string(16 * std::size_t{1024}, 'x') + "\"";
  bool slow_dropped = false;
  for (int i = 1; i <= 3000 && !slow_dropped; ++i) {
    const auto id = hub->publish("e", payload);
    auto e = read_event(fast);
    ASSERT_TRUE(e) << "fast client stalled at event " << i;
    ASSERT_EQ(e->id, std::to_string(id));
    slow_dropped = hub->client_count() == 1;
  }
  ASSERT_TRUE(slow_dropped) << "slow client was never disconnected";
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(slow.wait_closed()) << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  // The fast client still streams.
  const auto id = hub->publish("e", "\"after\"");
  auto e = read_event(fast);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, std::to_string(id));
}

}  // namespace
}  // namespace oss::http::test
