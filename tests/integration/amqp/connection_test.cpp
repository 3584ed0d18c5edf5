// Against a real RabbitMQ whose URL is in OSS_TEST_AMQP_URL (scripts/servers.sh start; source
// .run/servers/env). Every test uses its own randomly named queues and exchanges and deletes them.
#include "oss/amqp/connection.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <random>
#include <thread>
#include <string>
#include <vector>

#include "oss/amqp/nodes.hpp"
#include "oss/amqp/url.hpp"

namespace oss::amqp {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string random_suffix() {
  static std::mt19937_64 rng{std::random_device{}()};
  static const char hex[] = "0123456789abcdef";
  std::string s;
  for (std::uint64_t v = rng(), i = 0; i < 12; ++i, v >>= 4) s.push_back(hex[v & 0xFU]);
  return s;
}

std::string percent_encode(const std::string& s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.') {
      out.push_back(c);
    } else {
      out += '%';
      out += hex[u >> 4U];
      out += hex[u & 0xFU];
    }
  }
  return out;
}

std::string build_url(const UrlParts& p) {
  return "amqp://" + percent_encode(p.user) + ":" + percent_encode(p.password) + "@" + p.host +
         ":" + std::to_string(p.port) + "/" + percent_encode(p.vhost);
}

// A listening loopback socket on a kernel-chosen port; close() it to get a refusing port.
class LoopbackListener {
 public:
  LoopbackListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 4) != 0) {
      throw std::runtime_error("cannot listen on loopback");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~LoopbackListener() { close(); }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int port() const { return port_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

std::optional<FieldValue> header(const Delivery& d, const std::string& key) {
  for (const auto& [k, v] : d.headers) {
    if (k == key) return v;
  }
  return std::nullopt;
}

class AmqpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): the tests never change the environment
    const char* url = std::getenv("OSS_TEST_AMQP_URL");
    ASSERT_NE(url, nullptr) << "OSS_TEST_AMQP_URL is not set: start the test servers with "
                               "scripts/servers.sh start and `source .run/servers/env`";
    url_ = url;
    queue_ = "oss-test-q-" + random_suffix();
    exchange_ = "oss-test-x-" + random_suffix();
  }

  void TearDown() override {
    if (url_.empty()) return;
    try {
      Connection c(options());
      c.delete_queue(queue_);
      c.delete_exchange(exchange_);
    } catch (const Error& e) {
      ADD_FAILURE() << "cleanup failed: " << e.what();
    }
  }

  ConnectionOptions options() const {
    ConnectionOptions o;
    o.url = url_;
    o.connect_timeout = 3s;
    o.io_timeout = 10s;
    o.connection_name = std::string("amqp_integration_test ") +
                        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    return o;
  }

  // Exchange (direct) -> quorum queue bound with routing key "rk".
  void declare_topology(Connection& c) {
    c.declare_exchange(exchange_, "direct");
    c.declare_queue(queue_, QueueOptions{true, {{"x-queue-type", std::string("quorum")}}});
    c.bind_queue(queue_, exchange_, "rk");
  }

  Message message(int i) const {
    Message m;
    m.exchange = exchange_;
    m.routing_key = "rk";
    m.message_id = "msg-" + std::to_string(i);
    m.type = "order.created";
    m.body = R"({"i":)" + std::to_string(i) + "}";
    m.timestamp = 1700000000 + i;
    m.headers = {{"seq", std::int64_t{i}}, {"tenant", std::string("acme")}, {"replay", i % 2 == 0}};
    return m;
  }

  std::string url_, queue_, exchange_;
};

TEST_F(AmqpTest, PipelinedConfirmsThenConsumeInOrder) {
  Connection c(options());
  ASSERT_TRUE(c.is_open());
  declare_topology(c);
  c.enable_confirms();
  constexpr int kCount = 2000;
  std::uint64_t last = 0;
  for (int i = 0; i < kCount; ++i) {
    const std::uint64_t seq = c.publish(message(i), true);
    ASSERT_EQ(seq, last + 1);
    last = seq;
  }
  std::vector<std::uint64_t> acked;
  const auto deadline = Clock::now() + 30s;
  while (acked.size() < kCount && Clock::now() < deadline) {
    ConfirmBatch b = c.wait_confirms(last, 5s);
    EXPECT_TRUE(b.nacked.empty());
    EXPECT_TRUE(b.returned.empty());
    acked.insert(acked.end(), b.acked.begin(), b.acked.end());
  }
  ASSERT_EQ(acked.size(), static_cast<std::size_t>(kCount));
  for (std::size_t i = 0; i < acked.size(); ++i) EXPECT_EQ(acked[i], i + 1);
  EXPECT_EQ(c.queue_message_count(queue_), static_cast<std::uint32_t>(kCount));

  c.set_prefetch(200);
  const std::string tag = c.consume(queue_);
  EXPECT_FALSE(tag.empty());
  for (int i = 0; i < kCount; ++i) {
    const std::optional<Delivery> d = c.next_delivery(5s);
    ASSERT_TRUE(d.has_value()) << "delivery " << i << " did not arrive";
    const Message sent = message(i);
    EXPECT_EQ(d->message_id, sent.message_id);
    EXPECT_EQ(d->type, sent.type);
    EXPECT_EQ(d->content_type, "application/json");
    EXPECT_EQ(d->body, sent.body);
    EXPECT_EQ(d->headers, sent.headers);
    EXPECT_EQ(d->timestamp, sent.timestamp);
    EXPECT_EQ(d->exchange, exchange_);
    EXPECT_EQ(d->routing_key, "rk");
    EXPECT_EQ(d->consumer_tag, tag);
    EXPECT_FALSE(d->redelivered);
    c.ack(d->delivery_tag);
  }
  EXPECT_FALSE(c.next_delivery(200ms).has_value());
  c.cancel(tag);
  EXPECT_EQ(c.queue_message_count(queue_), 0U);
}

TEST_F(AmqpTest, DeliveriesAndConfirmsInterleavedOnOneConnection) {
  // Consume the queue we publish to: deliveries arrive while we wait for confirms and must be
  // kept for next_delivery().
  Connection c(options());
  declare_topology(c);
  c.enable_confirms();
  c.set_prefetch(50);
  c.consume(queue_);
  std::uint64_t last = 0;
  for (int i = 0; i < 100; ++i) last = c.publish(message(i), true);
  std::size_t acked = 0;
  for (int round = 0; round < 10 && acked < 100; ++round)
    acked += c.wait_confirms(last, 5s).acked.size();
  EXPECT_EQ(acked, 100U);
  for (int i = 0; i < 100; ++i) {
    const auto d = c.next_delivery(5s);
    ASSERT_TRUE(d.has_value()) << i;
    EXPECT_EQ(d->message_id, "msg-" + std::to_string(i));
    c.ack(d->delivery_tag);
  }
}

TEST_F(AmqpTest, MandatoryUnroutableIsReturnedWithNoRoute) {
  Connection c(options());
  c.declare_exchange(exchange_, "direct", false);  // no binding
  c.enable_confirms();
  Message m = message(1);
  m.message_id = "unroutable-1";
  const std::uint64_t seq = c.publish(m, true);
  const std::uint64_t seq2 = c.publish(message(2), false);  // not mandatory: silently dropped
  ConfirmBatch b = c.wait_confirms(seq2, 5s);
  ASSERT_EQ(b.returned.size(), 1U);
  EXPECT_EQ(b.returned[0].message_id, "unroutable-1");
  EXPECT_EQ(b.returned[0].reply_code, 312);
  EXPECT_EQ(b.returned[0].reply_text, "NO_ROUTE");
  EXPECT_EQ(b.returned[0].exchange, exchange_);
  EXPECT_EQ(b.returned[0].routing_key, "rk");
  // The broker acks a returned message too: the caller must not count it as delivered.
  EXPECT_EQ(b.acked, (std::vector<std::uint64_t>{seq, seq2}));
  EXPECT_TRUE(c.is_open());
}

TEST_F(AmqpTest, PublishToMissingExchangeIsChannelError404) {
  Connection c(options());
  c.enable_confirms();
  Message m = message(1);
  m.exchange = "oss-test-missing-" + random_suffix();
  const std::uint64_t seq = c.publish(m, true);
  try {
    (void)c.wait_confirms(seq, 5s);
    FAIL() << "expected ChannelError";
  } catch (const ChannelError& e) {
    EXPECT_EQ(e.reply_code, 404);
  }
  EXPECT_FALSE(c.is_open());
  EXPECT_THROW(c.publish(m, true), ConnectionError);
}

TEST_F(AmqpTest, PassiveDeclareOfMissingQueueIsChannelError404) {
  Connection c(options());
  try {
    (void)c.queue_message_count("oss-test-missing-" + random_suffix());
    FAIL() << "expected ChannelError";
  } catch (const ChannelError& e) {
    EXPECT_EQ(e.reply_code, 404);
  }
  EXPECT_FALSE(c.is_open());
}

TEST_F(AmqpTest, RedeclareWithDifferentArgumentsIsChannelError406) {
  Connection c(options());
  declare_topology(c);
  try {
    c.declare_queue(queue_, QueueOptions{true, {{"x-queue-type", std::string("classic")}}});
    FAIL() << "expected ChannelError";
  } catch (const ChannelError& e) {
    EXPECT_EQ(e.reply_code, 406);
  }
}

TEST_F(AmqpTest, WrongPasswordIsAuthError) {
  UrlParts p = parse_url(url_);
  p.password = "wrong-" + random_suffix();
  ConnectionOptions o = options();
  o.url = build_url(p);
  EXPECT_THROW(Connection{o}, AuthError);
}

TEST_F(AmqpTest, UnknownVhostIsAuthError) {
  UrlParts p = parse_url(url_);
  p.vhost = "oss-no-such-vhost-" + random_suffix();
  ConnectionOptions o = options();
  o.url = build_url(p);
  EXPECT_THROW(Connection{o}, AuthError);
}

TEST_F(AmqpTest, RefusedPortIsConnectionErrorWithinTimeout) {
  LoopbackListener l;
  const int port = l.port();
  l.close();
  ConnectionOptions o = options();
  o.url = "amqp://guest:guest@127.0.0.1:" + std::to_string(port) + "/%2f";
  o.connect_timeout = 2s;
  const auto start = Clock::now();
  EXPECT_THROW(Connection{o}, ConnectionError);
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST_F(AmqpTest, SilentServerIsConnectionErrorAfterHandshakeTimeout) {
  // Accepts TCP (backlog) but never speaks AMQP: the login handshake must time out.
  LoopbackListener l;
  ConnectionOptions o = options();
  o.url = "amqp://guest:guest@127.0.0.1:" + std::to_string(l.port()) + "/%2f";
  o.connect_timeout = 500ms;
  const auto start = Clock::now();
  EXPECT_THROW(Connection{o}, ConnectionError);
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, 400ms);
  EXPECT_LT(elapsed, 3s);
}

TEST_F(AmqpTest, NackWithRequeueRedelivers) {
  Connection c(options());
  declare_topology(c);
  c.enable_confirms();
  const auto seq = c.publish(message(7), true);
  ASSERT_EQ(c.wait_confirms(seq, 5s).acked.size(), 1U);
  c.set_prefetch(10);
  c.consume(queue_);
  auto first = c.next_delivery(5s);
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(first->redelivered);
  c.nack(first->delivery_tag, false, true);
  auto second = c.next_delivery(5s);
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(second->redelivered);
  EXPECT_EQ(second->message_id, "msg-7");
  // The broker re-encodes the headers of a requeued message (sorted) and, for a quorum queue,
  // adds x-delivery-count.
  EXPECT_EQ(header(*second, "seq"), FieldValue{std::int64_t{7}});
  EXPECT_EQ(header(*second, "tenant"), FieldValue{std::string("acme")});
  EXPECT_EQ(header(*second, "x-delivery-count"), FieldValue{std::int64_t{1}});
  c.ack(second->delivery_tag);
  EXPECT_FALSE(c.next_delivery(200ms).has_value());
}

TEST_F(AmqpTest, LargeBodiesRoundTrip) {
  Connection c(options());
  declare_topology(c);
  c.enable_confirms();
  std::vector<std::string> bodies;
  // Below the test broker's max_message_size (4 MiB, scripts/servers.sh).
  for (const std::size_t size : {std::size_t{1} << 20, std::size_t{3} << 20}) {
    std::string body(size, '\0');
    for (std::size_t i = 0; i < size; ++i) body[i] = static_cast<char>('a' + (i * 7919) % 26);
    bodies.push_back(std::move(body));
  }
  std::uint64_t last = 0;
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    Message m = message(static_cast<int>(i));
    m.body = bodies[i];
    m.content_type = "application/octet-stream";
    last = c.publish(m, true);
  }
  EXPECT_EQ(c.wait_confirms(last, 10s).acked.size(), bodies.size());
  c.consume(queue_);
  for (const auto& body : bodies) {
    auto d = c.next_delivery(10s);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->content_type, "application/octet-stream");
    EXPECT_EQ(d->body.size(), body.size());
    EXPECT_TRUE(d->body == body);
    c.ack(d->delivery_tag);
  }
}

TEST_F(AmqpTest, PrefetchIsRespected) {
  Connection c(options());
  declare_topology(c);
  c.enable_confirms();
  std::uint64_t last = 0;
  for (int i = 0; i < 5; ++i) last = c.publish(message(i), true);
  ASSERT_EQ(c.wait_confirms(last, 5s).acked.size(), 5U);
  c.set_prefetch(2);
  c.consume(queue_);
  auto d0 = c.next_delivery(5s);
  auto d1 = c.next_delivery(5s);
  ASSERT_TRUE(d0.has_value());
  ASSERT_TRUE(d1.has_value());
  EXPECT_FALSE(c.next_delivery(500ms).has_value()) << "got a third delivery with prefetch 2";
  c.ack(d0->delivery_tag);
  auto d2 = c.next_delivery(5s);
  ASSERT_TRUE(d2.has_value());
  EXPECT_EQ(d2->message_id, "msg-2");
  EXPECT_FALSE(c.next_delivery(500ms).has_value());
  c.ack(d2->delivery_tag, true);  // multiple: acks d1 too
  for (int i = 3; i < 5; ++i) {
    auto d = c.next_delivery(5s);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->message_id, "msg-" + std::to_string(i));
    c.ack(d->delivery_tag);
  }
}

TEST_F(AmqpTest, PurgeAndMessageCount) {
  Connection c(options());
  declare_topology(c);
  c.enable_confirms();
  std::uint64_t last = 0;
  for (int i = 0; i < 3; ++i) last = c.publish(message(i), true);
  ASSERT_EQ(c.wait_confirms(last, 5s).acked.size(), 3U);
  EXPECT_EQ(c.queue_message_count(queue_), 3U);
  c.purge_queue(queue_);
  EXPECT_EQ(c.queue_message_count(queue_), 0U);
}

TEST_F(AmqpTest, DeletedQueueCancelsConsumer) {
  Connection c(options());
  declare_topology(c);
  c.consume(queue_);
  {
    Connection other(options());
    other.delete_queue(queue_);
  }
  EXPECT_THROW((void)c.next_delivery(5s), ConsumerCancelled);
  EXPECT_FALSE(c.is_open());
}

TEST_F(AmqpTest, IdleConnectionSurvivesHeartbeats) {
  // Heartbeat 1 s: the broker would drop us after ~2 s of silence; next_delivery keeps us alive.
  ConnectionOptions o = options();
  o.heartbeat_seconds = 1;
  Connection c(o);
  declare_topology(c);
  c.consume(queue_);
  EXPECT_FALSE(c.next_delivery(3500ms).has_value());
  EXPECT_TRUE(c.is_open());
  EXPECT_EQ(c.queue_message_count(queue_), 0U);
}

// A publisher has no deliveries to wait for: while it has nothing to publish, keep_alive()
// is what sends its heartbeats. Heartbeat 1 s: the broker drops a connection after about 2 s
// of silence.
TEST_F(AmqpTest, AnIdlePublisherStaysConnectedWithKeepAliveAndIsDroppedWithout) {
  ConnectionOptions o = options();
  o.heartbeat_seconds = 1;
  {
    Connection c(o);
    declare_topology(c);
    c.enable_confirms();
    const auto until = Clock::now() + 4s;
    while (Clock::now() < until) {
      c.keep_alive();
      std::this_thread::sleep_for(200ms);
    }
    ASSERT_TRUE(c.is_open());
    const auto seq = c.publish(message(1), true);
    const auto b = c.wait_confirms(seq, 5s);
    EXPECT_EQ(b.acked.size(), 1U) << "the connection outlived 4 s without a publish";
  }
  {
    // The control: the same silence without keep_alive() loses the connection.
    Connection c(o);
    declare_topology(c);
    c.enable_confirms();
    std::this_thread::sleep_for(5s);
    EXPECT_THROW(
        {
          const auto seq = c.publish(message(2), true);
          (void)c.wait_confirms(seq, 5s);
          c.keep_alive();
        },
        oss::amqp::Error);
  }
}

TEST_F(AmqpTest, MoveKeepsTheConnection) {
  Connection a(options());
  Connection b(std::move(a));
  EXPECT_FALSE(a.is_open());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_TRUE(b.is_open());
  b.declare_queue(queue_, QueueOptions{true, {{"x-queue-type", std::string("quorum")}}});
  Connection c(options());
  c = std::move(b);
  EXPECT_EQ(c.queue_message_count(queue_), 0U);
}

// ---- Cluster failover (a comma-separated URL list) ----------------------------------------

// Forwards one TCP connection from a loopback port to the broker until cut() drops both sides:
// a "node" whose connection can be lost on demand while the broker itself stays up.
class CuttableProxy {
 public:
  explicit CuttableProxy(int upstream_port) : upstream_port_(upstream_port) {
    thread_ = std::thread([this] { serve(); });
  }
  ~CuttableProxy() {
    cut();
    listener_.close();
    thread_.join();
  }
  CuttableProxy(const CuttableProxy&) = delete;
  CuttableProxy& operator=(const CuttableProxy&) = delete;
  int port() const { return listener_.port(); }
  void cut() { stop_ = true; }

 private:
  void serve() {
    pollfd lp{listener_fd(), POLLIN, 0};
    while (!stop_ && ::poll(&lp, 1, 50) == 0) {
    }
    if (stop_) return;
    const int client = ::accept(listener_fd(), nullptr, nullptr);
    const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(upstream_port_));
    if (client >= 0 && ::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
      char buf[65536];
      while (!stop_) {
        if (::poll(fds, 2, 50) <= 0) continue;
        bool closed = false;
        for (int i = 0; i < 2 && !closed; ++i) {
          if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
          const auto n = ::recv(fds[i].fd, buf, sizeof buf, 0);
          closed = n <= 0 || ::send(fds[1 - i].fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n;
        }
        if (closed) break;
      }
    }
    if (client >= 0) ::close(client);
    ::close(upstream);
  }
  int listener_fd() const { return listener_.fd(); }

  LoopbackListener listener_;
  int upstream_port_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(AmqpTest, ClusterListSkipsRefusingAndHangingNodes) {
  LoopbackListener refusing;
  const int refused_port = refusing.port();
  refusing.close();
  LoopbackListener hanging;  // accepts TCP (backlog) but never speaks AMQP
  const UrlParts live = parse_url(url_);
  ConnectionOptions o = options();
  o.url = "amqp://guest:guest@127.0.0.1:" + std::to_string(refused_port) + "/%2f, amqp://guest:guest@127.0.0.1:" +
          std::to_string(hanging.port()) + "/%2f," + url_;
  o.connect_timeout = 1s;
  const auto start = Clock::now();
  Connection c(o);
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_EQ(c.node_index(), 2U);
  EXPECT_EQ(c.node_count(), 3U);
  EXPECT_NE(c.node().find(":" + std::to_string(live.port)), std::string::npos) << c.node();
  declare_topology(c);  // the connection works
  int open_on_live = -1;
  for (const auto& n : connections_by_node())
    if (n.node == live.host + ":" + std::to_string(live.port)) open_on_live = n.open;
  EXPECT_GE(open_on_live, 1);
}

TEST_F(AmqpTest, ClusterListEveryNodeDownIsConnectionErrorNamingEach) {
  LoopbackListener a, b;
  const int pa = a.port(), pb = b.port();
  a.close();
  b.close();
  ConnectionOptions o = options();
  o.url = "amqp://guest:guest@127.0.0.1:" + std::to_string(pa) + "/%2f,amqp://guest:guest@127.0.0.1:" +
          std::to_string(pb) + "/%2f";
  try {
    Connection c(o);
    ADD_FAILURE() << "connected";
  } catch (const ConnectionError& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(pa)), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::to_string(pb)), std::string::npos) << e.what();
  }
}

// After a connection is lost, the next Connection with the same list starts at the following
// node, even though the lost node accepts connections again; with no loss it stays put.
TEST_F(AmqpTest, ClusterListMovesOnAfterALostConnection) {
  const UrlParts live = parse_url(url_);
  CuttableProxy proxy(live.port);
  ConnectionOptions o = options();
  o.url = "amqp://guest:guest@127.0.0.1:" + std::to_string(proxy.port()) + "/%2f," + url_;
  o.heartbeat_seconds = 0;
  {
    Connection c(o);
    ASSERT_EQ(c.node_index(), 0U);  // through the proxy
    declare_topology(c);
    proxy.cut();
    EXPECT_THROW(
        {
          for (int i = 0; i < 100; ++i) {
            c.queue_message_count(queue_);
            std::this_thread::sleep_for(50ms);
          }
        },
        ConnectionError);
  }
  Connection next(o);
  EXPECT_EQ(next.node_index(), 1U);
  Connection again(o);
  EXPECT_EQ(again.node_index(), 1U) << "no loss since: stays on the node it is on";
}

}  // namespace
}  // namespace oss::amqp
