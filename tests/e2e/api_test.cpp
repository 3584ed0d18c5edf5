// The operators' HTTP API (CONTRACT "HTTP API", docs/api.md), shown from outside on real servers:
// every endpoint's success and failure answers, authentication and roles, the live stream with
// Last-Event-ID resumption, slow and oversized clients, and a bounded fuzz that must not crash it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <system_error>

#include "oss/core/time.hpp"
#include <random>
#include <set>

#include "pipeline_fixture.hpp"

namespace oss::e2e {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::http;
using testing::HttpResult;

constexpr const char* kOperatorToken = "secret-anna-7f3c";
constexpr const char* kViewerToken = "secret-victor-19ad";

/// A raw TCP client for what testing::http cannot do: partial requests, garbage, SSE.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }
  bool send(const std::string& data) const {
    std::size_t off = 0;
    while (off < data.size()) {
      const auto n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
  /// Reads until `done(received)` or the peer closes or `timeout` passes. True if done().
  bool read_until(const std::function<bool(const std::string&)>& done, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!done(received)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0 || closed) return done(received);
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[8192];
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed = true;
        continue;
      }
      received.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  /// Reads until the peer closes (or timeout); true if it closed.
  bool read_to_close(std::chrono::milliseconds timeout) {
    read_until([this](const std::string&) { return closed; }, timeout);
    return closed;
  }

  std::string received;
  bool closed = false;

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string url_encode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// NOLINTNEXTLINE(bugprone-exception-escape): false positive: std::string's and json's moves are noexcept
struct SseEvent {
  std::uint64_t id = 0;
  std::string type;
  json data;
};

/// Complete events in an SSE byte stream (after the response header).
std::vector<SseEvent> parse_sse(const std::string& raw) {
  std::vector<SseEvent> out;
  const auto body_at = raw.find("\r\n\r\n");
  if (body_at == std::string::npos) return out;
  std::size_t pos = body_at + 4;
  for (;;) {
    const auto end = raw.find("\n\n", pos);
    if (end == std::string::npos) break;
    const std::string block = raw.substr(pos, end - pos);
    pos = end + 2;
    SseEvent e;
    std::string data;
    std::size_t line_at = 0;
    while (line_at <= block.size()) {
      auto nl = block.find('\n', line_at);
      if (nl == std::string::npos) nl = block.size();
      const std::string line = block.substr(line_at, nl - line_at);
      line_at = nl + 1;
      if (line.rfind("id: ", 0) == 0) e.id = std::stoull(line.substr(4));
      if (line.rfind("event: ", 0) == 0) e.type = line.substr(7);
      if (line.rfind("data: ", 0) == 0) data += line.substr(6);
    }
    if (e.type.empty()) continue;  // keepalive comment
    e.data = json::parse(data);
    out.push_back(std::move(e));
  }
  return out;
}

class Api : public Pipeline {
 protected:
  void SetUp() override {
    Pipeline::SetUp();
    tokens_path_ = (std::filesystem::temp_directory_path() / (testing::unique_name("tokens") + ".json")).string();
    write_file(tokens_path_, json::array({{{"name", "ops-anna"}, {"role", "operator"}, {"sha256", sha256_of(kOperatorToken)}},
                                          {{"name", "view-victor"}, {"role", "viewer"}, {"sha256", sha256_of(kViewerToken)}}})
                                 .dump());
  }
  void TearDown() override {
    std::error_code ignored;  // already gone is fine
    std::filesystem::remove(tokens_path_, ignored);
    // Stopped before the topology is removed: a running service would declare it again.
    service_.reset();
    relay_crm_.reset();
    relay_mes_.reset();
    Pipeline::TearDown();
  }

  static void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
  }
  /// SHA-256 via PostgreSQL (the test does not link OpenSSL; the server's hashing is unit-tested).
  std::string sha256_of(const std::string& token) {
    return testing::sql_scalar(oss_, "SELECT encode(sha256(convert_to('" + token + "', 'UTF8')), 'hex')");
  }

  /// The service with tokens and a short read timeout (slow-client tests stay quick).
  void start_all() {
    service_ = start_service(http_port_, {"--tokens", tokens_path_, "--http-read-timeout", "2s"});
    relay_crm_ = start_relay(crm_);
    relay_mes_ = start_relay(mes_);
    ASSERT_TRUE(wait_ready(http_port_)) << service_->log();
  }

  static std::map<std::string, std::string> auth(const std::string& token) {
    return {{"Authorization", "Bearer " + token}};
  }
  HttpResult get(const std::string& target, const std::string& token = kViewerToken) {
    return http("GET", http_port_, target, "", auth(token));
  }
  HttpResult post(const std::string& target, const json& body, const std::string& token = kOperatorToken) {
    return http("POST", http_port_, target, body.dump(), auth(token));
  }
  void emit(const std::string& source, const std::string& id, const std::string& status) {
    testing::sql_exec(source == "crm" ? crm_ : mes_, emit_sql(source, id, status));
  }
  bool wait_status(const std::string& id, const std::string& status) {
    return testing::wait_until(
        [&] {
          const auto r = get("/v1/orders/" + id);
          return r.status == 200 && json::parse(r.body).at("status") == status;
        },
        30s);
  }
  static void expect_problem(const HttpResult& r, int status, const std::string& detail_part = "") {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.headers.contains("content-type") ? r.headers.at("content-type") : "", "application/problem+json") << r.body;
    if (r.status != status) return;
    const auto j = json::parse(r.body);
    EXPECT_EQ(j.at("status"), status);
    EXPECT_NE(j.at("detail").get<std::string>().find(detail_part), std::string::npos)
        << "detail: " << j.at("detail") << " expected to contain: " << detail_part;
  }

  std::string tokens_path_;
  std::unique_ptr<testing::Process> service_, relay_crm_, relay_mes_;
};

TEST_F(Api, TokensAndRolesGuardEveryEndpoint) {
  start_all();
  // Operational endpoints need no token.
  EXPECT_EQ(http("GET", http_port_, "/healthz").status, 200);
  EXPECT_EQ(http("GET", http_port_, "/readyz").status, 200);
  EXPECT_EQ(http("GET", http_port_, "/metrics").status, 200);
  // Nor does the (data-free) dashboard page.
  EXPECT_EQ(http("GET", http_port_, "/").status, 200);

  for (const std::string target : {"/v1/orders", "/v1/orders/X", "/v1/orders/X/history", "/v1/escalations",
                                   "/v1/dead-letters", "/v1/stats"}) {
    const auto none = http("GET", http_port_, target);
    expect_problem(none, 401, "token is required");
    EXPECT_EQ(none.headers.count("www-authenticate"), 1U) << target;
    expect_problem(get(target, "wrong-token"), 401, "not valid");
    expect_problem(http("GET", http_port_, target, "", {{"Authorization", "Basic dXNlcjpwYXNz"}}), 401, "Bearer");
    // A hash from the tokens file is not a token.
    expect_problem(get(target, sha256_of(kViewerToken)), 401, "not valid");
  }
  // POSTs: 401 without a token, 403 for a viewer, and the body is not even looked at.
  expect_problem(http("POST", http_port_, "/v1/orders/X/status", R"({"status":"CANCELLED","reason":"r"})"), 401);
  expect_problem(post("/v1/orders/X/status", {{"status", "CANCELLED"}, {"reason", "r"}}, kViewerToken), 403,
                 "role viewer");
  expect_problem(post("/v1/dead-letters/replay", {{"reason", "malformed"}}, kViewerToken), 403, "role operator");
  expect_problem(http("POST", http_port_, "/v1/dead-letters/replay", "{}"), 401);
  // Operators may read too.
  EXPECT_EQ(get("/v1/orders", kOperatorToken).status, 200);
  EXPECT_EQ(get("/v1/stats", kOperatorToken).status, 200);

  // The stream: 401 without a token; ?access_token= works (EventSource cannot send headers).
  {
    RawClient c(http_port_);
    c.send("GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n");
    c.read_until([](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; }, 5s);
    EXPECT_EQ(c.received.rfind("HTTP/1.1 401", 0), 0U) << c.received;
  }
  {
    RawClient c(http_port_);
    c.send(std::string("GET /v1/stream?access_token=") + kViewerToken + " HTTP/1.1\r\nHost: x\r\n\r\n");
    c.read_until([](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; }, 5s);
    EXPECT_EQ(c.received.rfind("HTTP/1.1 200", 0), 0U) << c.received;
    EXPECT_NE(c.received.find("text/event-stream"), std::string::npos);
  }
  // Tokens never reach the log.
  service_->signal(SIGTERM);
  EXPECT_EQ(service_->wait(30s), 0);
  const auto log = service_->log();
  EXPECT_EQ(log.find(kViewerToken), std::string::npos);
  EXPECT_EQ(log.find(kOperatorToken), std::string::npos);
}

TEST_F(Api, OrdersAreListedFilteredAndPaginated) {
  start_all();
  for (int i = 0; i < 25; ++i) emit("crm", "L-" + std::to_string(100 + i), "SUBMITTED");
  for (int i = 0; i < 5; ++i) emit("mes", "L-" + std::to_string(100 + i), "PRICE_CALCULATED");
  ASSERT_TRUE(wait_status("L-124", "SUBMITTED")) << service_->log();
  ASSERT_TRUE(wait_status("L-104", "PRICE_CALCULATED")) << service_->log();

  // Walk all pages: every order once, each item shaped like GET /v1/orders/{id}.
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    const auto r = get("/v1/orders?limit=10" + (cursor.empty() ? "" : "&cursor=" + url_encode(cursor)));
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = json::parse(r.body);
    ASSERT_LE(j.at("orders").size(), 10U);
    for (const auto& o : j.at("orders")) {
      EXPECT_TRUE(seen.insert(o.at("order_id").get<std::string>()).second) << "twice: " << o;
      for (const char* k : {"status", "status_entered_at", "sla_due_at", "breached", "version", "updated_at"})
        EXPECT_TRUE(o.contains(k)) << k;
    }
    cursor = j.at("next_cursor").is_null() ? "" : j.at("next_cursor").get<std::string>();
    ASSERT_LT(++pages, 10);
  } while (!cursor.empty());
  EXPECT_EQ(seen.size(), 25U);

  const auto priced = json::parse(get("/v1/orders?status=PRICE_CALCULATED").body);
  EXPECT_EQ(priced.at("orders").size(), 5U);
  for (const auto& o : priced.at("orders")) EXPECT_EQ(o.at("status"), "PRICE_CALCULATED");

  // Stuck: push two orders past their SLA (as if they had entered SUBMITTED 3 hours ago).
  testing::sql_exec(oss_, "UPDATE oss.orders SET status_entered_at = now() - interval '3 hours', "
                          "sla_due_at = now() - interval '2 hours' WHERE order_id IN ('L-120', 'L-121')");
  const auto stuck = json::parse(get("/v1/orders?stuck=true").body);
  ASSERT_EQ(stuck.at("orders").size(), 2U) << stuck;
  for (const auto& o : stuck.at("orders")) EXPECT_TRUE(o.at("breached").get<bool>());
  EXPECT_EQ(json::parse(get("/v1/orders?older_than=1h").body).at("orders").size(), 2U);
  EXPECT_EQ(json::parse(get("/v1/orders?stuck=true&status=PRICE_CALCULATED").body).at("orders").size(), 0U);
  EXPECT_EQ(json::parse(get("/v1/orders?due_before=2000-01-01T00:00:00Z").body).at("orders").size(), 0U);
  const auto stats = json::parse(get("/v1/stats").body);
  EXPECT_EQ(stats.at("stuck"), 2);
  EXPECT_EQ(stats.at("orders"), 25);
  EXPECT_EQ(stats.at("orders_by_status").at("SUBMITTED"), 20);
  EXPECT_EQ(stats.at("orders_by_status").at("PRICE_CALCULATED"), 5);
  EXPECT_EQ(stats.at("orders_by_status").at("DELIVERED"), 0);

  // Bad parameters: 400 with the reason.
  expect_problem(get("/v1/orders?status=SHIPPD"), 400, "unknown status 'SHIPPD'");
  expect_problem(get("/v1/orders?older_than=soon"), 400, "older_than");
  expect_problem(get("/v1/orders?due_before=yesterday"), 400, "due_before");
  expect_problem(get("/v1/orders?limit=0"), 400, "limit");
  expect_problem(get("/v1/orders?limit=1001"), 400, "limit");
  expect_problem(get("/v1/orders?limit=ten"), 400, "limit");
  expect_problem(get("/v1/orders?stuck=yes"), 400, "stuck");
  expect_problem(get("/v1/orders?cursor=not-a-cursor"), 400, "cursor");
  expect_problem(get("/v1/orders?stauts=SUBMITTED"), 400, "unknown parameter 'stauts'");
  expect_problem(get("/v1/orders?q=%zz"), 400);

  // One order and its history; 404 for unknown ones.
  const auto one = get("/v1/orders/L-101");
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(json::parse(one.body).at("status"), "PRICE_CALCULATED");
  const auto h = json::parse(get("/v1/orders/L-101/history").body);
  ASSERT_EQ(h.at("history").size(), 2U);
  EXPECT_EQ(h.at("history")[1].at("from"), "SUBMITTED");
  EXPECT_EQ(h.at("history")[1].at("source"), "mes");
  expect_problem(get("/v1/orders/NOPE"), 404, "not known");
  expect_problem(get("/v1/orders/NOPE/history"), 404, "not known");
  expect_problem(get("/v1/nothing-here"), 404);
  expect_problem(http("DELETE", http_port_, "/v1/orders/L-101", "", auth(kOperatorToken)), 405);

  // HTTP metrics by route pattern and status.
  const auto metrics = http("GET", http_port_, "/metrics").body;
  EXPECT_GE(testing::metric(metrics, R"(oss_http_requests_total{route="/v1/orders/{id}",status="404"})"), 1);
  EXPECT_GE(testing::metric(metrics, R"(oss_http_requests_total{route="/v1/orders",status="400"})"), 9);
  EXPECT_GE(testing::metric(metrics, R"(oss_http_request_seconds_count{route="/v1/orders"})"), 10);
}

TEST_F(Api, OperatorCorrectionsAreAuditedGoThroughTheWorkflowAndGoLive) {
  start_all();
  emit("crm", "C-1", "SUBMITTED");
  emit("crm", "C-2", "SUBMITTED");
  ASSERT_TRUE(wait_status("C-1", "SUBMITTED")) << service_->log();
  ASSERT_TRUE(wait_status("C-2", "SUBMITTED")) << service_->log();

  RawClient stream(http_port_);
  stream.send(std::string("GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + kViewerToken + "\r\n\r\n");
  ASSERT_TRUE(stream.read_until([](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; }, 5s));

  const auto r = post("/v1/orders/C-1/status", {{"status", "CANCELLED"}, {"reason", "customer phoned: duplicate order"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto o = json::parse(r.body);
  EXPECT_EQ(o.at("order_id"), "C-1");
  EXPECT_EQ(o.at("status"), "CANCELLED");
  EXPECT_EQ(json::parse(get("/v1/orders/C-1").body).at("status"), "CANCELLED");
  const auto h = json::parse(get("/v1/orders/C-1/history").body).at("history");
  ASSERT_EQ(h.size(), 2U);
  EXPECT_EQ(h[1].at("from"), "SUBMITTED");
  EXPECT_EQ(h[1].at("to"), "CANCELLED");
  EXPECT_EQ(h[1].at("source"), "operator");
  EXPECT_EQ(h[1].at("actor"), "ops-anna");
  EXPECT_EQ(h[1].at("reason"), "customer phoned: duplicate order");
  EXPECT_TRUE(h[1].at("event_id").is_null());

  // The correction is on the live stream. (C-2's creation may come first: the stream can
  // carry a change committed just before the client connected; a CI run saw exactly that.)
  const auto correction = [](const std::string& raw) -> std::optional<SseEvent> {
    for (auto& e : parse_sse(raw))
      if (e.data.is_object() && e.data.value("order_id", "") == "C-1") return e;
    return std::nullopt;
  };
  ASSERT_TRUE(stream.read_until([&](const std::string& s) { return correction(s).has_value(); }, 10s))
      << stream.received;
  const auto event = *correction(stream.received);
  EXPECT_EQ(event.type, "status_changed");
  EXPECT_EQ(event.data.at("from"), "SUBMITTED");
  EXPECT_EQ(event.data.at("to"), "CANCELLED");
  EXPECT_EQ(event.data.at("actor"), "ops-anna");

  // The workflow decides: CANCELLED is terminal.
  expect_problem(post("/v1/orders/C-1/status", {{"status", "SHIPPED"}, {"reason", "oops"}}), 409);
  // SUBMITTED → DELIVERED skips the workflow.
  expect_problem(post("/v1/orders/C-2/status", {{"status", "DELIVERED"}, {"reason", "skip"}}), 409);
  EXPECT_EQ(json::parse(get("/v1/orders/C-2").body).at("status"), "SUBMITTED");
  // Unknown orders are not created by hand.
  expect_problem(post("/v1/orders/C-404/status", {{"status", "SUBMITTED"}, {"reason", "create"}}), 404, "not known");
  // Bad bodies.
  expect_problem(post("/v1/orders/C-2/status", {{"status", "CANCELLED"}}), 400, "reason");
  expect_problem(post("/v1/orders/C-2/status", {{"status", "CANCELLED"}, {"reason", "  "}}), 400, "reason");
  expect_problem(post("/v1/orders/C-2/status", {{"status", "CANCELED"}, {"reason", "typo"}}), 400, "unknown status");
  expect_problem(post("/v1/orders/C-2/status", {{"reason", "no status"}}), 400, "status");
  expect_problem(post("/v1/orders/C-2/status", {{"status", "CANCELLED"}, {"reason", "r"}, {"actor", "me"}}), 400,
                 "unknown field 'actor'");
  expect_problem(http("POST", http_port_, "/v1/orders/C-2/status", "{\"status\":", auth(kOperatorToken)), 400,
                 "not valid JSON");
  expect_problem(http("POST", http_port_, "/v1/orders/C-2/status", "[1]", auth(kOperatorToken)), 400, "JSON object");
  {
    RawClient c(http_port_);
    c.send(std::string("POST /v1/orders/C-2/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + kOperatorToken +
           "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16\r\n\r\nstatus=CANCELLED");
    c.read_until([](const std::string& got) { return got.find('}') != std::string::npos; }, 5s);
    EXPECT_EQ(c.received.rfind("HTTP/1.1 400", 0), 0U) << c.received;
    EXPECT_NE(c.received.find("must be application/json"), std::string::npos) << c.received;
  }
  // Oversized body: 413 before any handler runs.
  const std::string huge = json({{"status", "CANCELLED"}, {"reason", std::string(70 * std::size_t{1024}, 'x')}}).dump();
  expect_problem(http("POST", http_port_, "/v1/orders/C-2/status", huge, auth(kOperatorToken)), 413);
  EXPECT_EQ(json::parse(get("/v1/orders/C-2").body).at("status"), "SUBMITTED");
}

TEST_F(Api, DeadLettersAreListedAndReplayed) {
  start_all();
  emit("crm", "D-1", "SUBMITTED");
  emit("crm", "D-2", "NO_SUCH_STATUS");  // dead-lettered at once: unknown_status
  emit("crm", "D-3", "ALSO_UNKNOWN");
  ASSERT_TRUE(testing::wait_until([&] { return json::parse(get("/v1/dead-letters").body).at("open_count") == 2; }, 30s))
      << get("/v1/dead-letters").body << service_->log();

  // The list is in the order the dead letters were recorded. D-2 and D-3 are different orders,
  // which the service's consumer threads may commit in either order: compare them as a set, and
  // the pages against the whole list.
  const auto all = json::parse(get("/v1/dead-letters").body);
  ASSERT_EQ(all.at("dead_letters").size(), 2U);
  std::set<std::string> orders;
  std::string event_id;  // D-2's
  for (const auto& d : all.at("dead_letters")) {
    EXPECT_EQ(d.at("reason"), "unknown_status") << d;
    EXPECT_EQ(d.at("source"), "crm") << d;
    orders.insert(d.at("order_id").get<std::string>());
    if (d.at("order_id") == "D-2") event_id = d.at("event_id");
  }
  EXPECT_EQ(orders, (std::set<std::string>{"D-2", "D-3"}));
  ASSERT_FALSE(event_id.empty()) << all;
  EXPECT_TRUE(all.at("next_cursor").is_null());

  const auto page1 = json::parse(get("/v1/dead-letters?limit=1").body);
  ASSERT_EQ(page1.at("dead_letters").size(), 1U);
  EXPECT_EQ(page1.at("dead_letters")[0].at("event_id"), all.at("dead_letters")[0].at("event_id"));
  ASSERT_FALSE(page1.at("next_cursor").is_null());
  const auto page2 =
      json::parse(get("/v1/dead-letters?limit=1&cursor=" + url_encode(page1.at("next_cursor").get<std::string>())).body);
  ASSERT_EQ(page2.at("dead_letters").size(), 1U);
  EXPECT_EQ(page2.at("dead_letters")[0].at("event_id"), all.at("dead_letters")[1].at("event_id"));
  EXPECT_EQ(json::parse(get("/v1/dead-letters?reason=malformed").body).at("dead_letters").size(), 0U);
  EXPECT_EQ(json::parse(get("/v1/stats").body).at("dead_letters_open"), 2);

  expect_problem(get("/v1/dead-letters?reason=bogus"), 400, "unknown dead-letter reason");
  expect_problem(get("/v1/dead-letters?cursor=abc"), 400, "cursor");
  expect_problem(get("/v1/dead-letters?limit=5000"), 400, "limit");
  expect_problem(get("/v1/dead-letters?include_replayed=maybe"), 400, "include_replayed");

  // Replay one by event id (it is dead-lettered again: its status is still unknown), and an id
  // that has no open dead letter.
  const auto r = post("/v1/dead-letters/replay", {{"event_ids", {event_id, "00000000-0000-0000-0000-000000000000"}}});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto result = json::parse(r.body);
  EXPECT_EQ(result.at("replayed"), json::array({event_id}));
  EXPECT_EQ(result.at("not_found"), json::array({"00000000-0000-0000-0000-000000000000"}));
  // Marked replayed at once (after the broker confirmed); what the consumer then decides is
  // the pipeline's business (tests of the dlq/consumer).
  const auto after = json::parse(get("/v1/dead-letters?include_replayed=true").body);
  bool marked = false;
  for (const auto& d : after.at("dead_letters"))
    if (d.at("event_id") == event_id && !d.at("replayed_at").is_null()) marked = true;
  EXPECT_TRUE(marked) << after;
  const auto open_now = json::parse(get("/v1/dead-letters").body);
  for (const auto& d : open_now.at("dead_letters")) EXPECT_TRUE(d.at("replayed_at").is_null()) << d;

  expect_problem(post("/v1/dead-letters/replay", json::object()), 400, "exactly one");
  expect_problem(post("/v1/dead-letters/replay", {{"event_ids", json::array()}, {"reason", "malformed"}}), 400,
                 "exactly one");
  expect_problem(post("/v1/dead-letters/replay", {{"event_ids", json::array()}}), 400, "event_ids");
  expect_problem(post("/v1/dead-letters/replay", {{"event_ids", {1, 2}}}), 400, "event_ids");
  expect_problem(post("/v1/dead-letters/replay", {{"reason", "whatever"}}), 400, "unknown dead-letter reason");
}

TEST_F(Api, EscalationsAndStatsAnswer) {
  start_all();
  const auto r = get("/v1/escalations");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto j = json::parse(r.body);
  EXPECT_TRUE(j.at("escalations").is_array());
  EXPECT_TRUE(j.contains("next_cursor"));
  EXPECT_EQ(get("/v1/escalations?open=false&level=critical&limit=5").status, 200);
  expect_problem(get("/v1/escalations?open=perhaps"), 400, "open");
  expect_problem(get("/v1/escalations?level=a%20b"), 400, "level");
  expect_problem(get("/v1/escalations?limit=-1"), 400, "limit");
  expect_problem(get("/v1/escalations?cursor=%01"), 400, "cursor");
  expect_problem(get("/v1/stats?x=1"), 400, "unknown parameter");

  const auto stats = json::parse(get("/v1/stats").body);
  for (const char* k : {"orders_by_status", "orders", "stuck", "open_escalations", "dead_letters_open", "at"})
    EXPECT_TRUE(stats.contains(k)) << k;

  const auto page = http("GET", http_port_, "/");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.headers.at("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page.headers.at("content-security-policy").find("default-src 'none'"), std::string::npos);
  EXPECT_NE(page.body.find("<title>"), std::string::npos);
  EXPECT_NE(page.body.find("/v1/stream"), std::string::npos);
  EXPECT_EQ(page.body.find("http://"), std::string::npos);   // nothing from elsewhere
  EXPECT_EQ(page.body.find("https://"), std::string::npos);
}

TEST_F(Api, StreamResumesFromLastEventId) {
  start_all();
  const std::string open = std::string("GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + kViewerToken;
  std::uint64_t first_id = 0;
  {
    RawClient c(http_port_);
    c.send(open + "\r\n\r\n");
    emit("crm", "S-1", "SUBMITTED");
    emit("crm", "S-2", "SUBMITTED");
    ASSERT_TRUE(c.read_until([](const std::string& s) { return parse_sse(s).size() >= 2; }, 30s)) << c.received;
    const auto events = parse_sse(c.received);
    EXPECT_EQ(events[0].type, "status_changed");
    EXPECT_EQ(events[0].data.at("to"), "SUBMITTED");
    EXPECT_EQ(events[0].data.at("source"), "crm");
    EXPECT_GT(events[1].id, events[0].id);
    first_id = events[0].id;
  }
  emit("mes", "S-1", "PRICE_CALCULATED");  // while nobody listens
  ASSERT_TRUE(wait_status("S-1", "PRICE_CALCULATED"));
  RawClient c(http_port_);
  c.send(open + "\r\nLast-Event-ID: " + std::to_string(first_id) + "\r\n\r\n");
  ASSERT_TRUE(c.read_until([](const std::string& s) { return parse_sse(s).size() >= 2; }, 10s)) << c.received;
  const auto events = parse_sse(c.received);
  EXPECT_EQ(events[0].id, first_id + 1);  // what it missed, in order, nothing twice
  EXPECT_EQ(events[1].id, first_id + 2);
  EXPECT_EQ(events[1].data.at("order_id"), "S-1");
  EXPECT_EQ(events[1].data.at("to"), "PRICE_CALCULATED");
}

TEST_F(Api, SlowOversizedAndGarbageClientsNeverHurtTheService) {
  start_all();
  // Slow client: half a request, then nothing: 408 after --http-read-timeout (2s), then closed.
  {
    RawClient c(http_port_);
    const auto started = std::chrono::steady_clock::now();
    c.send("GET /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ");
    EXPECT_TRUE(c.read_to_close(10s));
    EXPECT_EQ(c.received.rfind("HTTP/1.1 408", 0), 0U) << c.received;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 6s);
  }
  // A body that trickles in too slowly.
  {
    RawClient c(http_port_);
    c.send(std::string("POST /v1/orders/X/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + kOperatorToken +
           "\r\nContent-Length: 100\r\n\r\n{\"status\"");
    EXPECT_TRUE(c.read_to_close(10s));
    EXPECT_EQ(c.received.rfind("HTTP/1.1 408", 0), 0U) << c.received;
  }
  // A connection that sends nothing at all is closed too.
  {
    RawClient c(http_port_);
    EXPECT_TRUE(c.read_to_close(10s));
  }
  // Oversized headers: 431.
  {
    RawClient c(http_port_);
    c.send("GET /v1/orders HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
    c.read_to_close(10s);
    EXPECT_EQ(c.received.rfind("HTTP/1.1 431", 0), 0U) << c.received.substr(0, 200);
  }
  // Oversized body declared up front: 413.
  {
    RawClient c(http_port_);
    c.send(std::string("POST /v1/dead-letters/replay HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + kOperatorToken +
           "\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{");
    c.read_to_close(10s);
    EXPECT_EQ(c.received.rfind("HTTP/1.1 413", 0), 0U) << c.received.substr(0, 200);
  }

  // Bounded fuzz of request lines and headers against the whole API (fixed seed: reproducible).
  const std::vector<std::string> seeds = {
      std::string("GET /v1/orders?status=SUBMITTED&stuck=true&limit=5 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ") +
          kViewerToken + "\r\n\r\n",
      std::string("POST /v1/orders/F-1/status HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ") + kOperatorToken +
          "\r\nContent-Type: application/json\r\nContent-Length: 37\r\n\r\n{\"status\":\"CANCELLED\",\"reason\":\"f\"}  ",
      std::string("POST /v1/dead-letters/replay HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ") + kOperatorToken +
          "\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n{\"event_ids\":[\"x\"]\r\n1\r\n}\r\n0\r\n\r\n",
      std::string("GET /v1/stream?access_token=") + kViewerToken + " HTTP/1.1\r\nLast-Event-ID: 99999999999999999999\r\n\r\n",
      "GET /v1/orders/%E2%82%AC/history HTTP/1.0\r\nAuthorization: bearer  x\r\nConnection: keep-alive\r\n\r\n",
      "GET /v1/dead-letters?cursor=1&reason=malformed&limit=1000 HTTP/1.1\r\nAuthorization: Bearer\r\n\r\n",
  };
  std::mt19937 rng(424242);  // NOLINT(cert-msc32-c,cert-msc51-cpp): fixed seed, a failure reproduces
  std::uniform_int_distribution<int> byte(0, 255);
  constexpr int kCases = 400;
  for (int i = 0; i < kCases; ++i) {
    std::string s = seeds[static_cast<std::size_t>(i) % seeds.size()];
    const int rounds = std::uniform_int_distribution<int>(1, 5)(rng);
    for (int k = 0; k < rounds && !s.empty(); ++k) {
      std::uniform_int_distribution<std::size_t> pos(0, s.size() - 1);
      switch (std::uniform_int_distribution<int>(0, 5)(rng)) {
        case 0: s[pos(rng)] = static_cast<char>(byte(rng)); break;
        case 1: s.insert(pos(rng), 1, static_cast<char>(byte(rng))); break;
        case 2: s.erase(pos(rng), std::uniform_int_distribution<std::size_t>(1, 10)(rng)); break;
        case 3: s.insert(pos(rng), "\r\n"); break;
        case 4: s.insert(pos(rng), std::string(std::uniform_int_distribution<std::size_t>(1, 500)(rng), '%')); break;
        default: s.insert(pos(rng), "?a=%00&b=%ff&access_token=&cursor=" + std::string(40, 'z')); break;
      }
    }
    RawClient c(http_port_);
    ASSERT_TRUE(c.connected()) << "case " << i << service_->log();
    c.send(s);
    // Read what comes back for a moment; the server answers, waits or closes: never crashes.
    c.read_until([](const std::string& r) { return r.find("\r\n\r\n") != std::string::npos; }, 300ms);
  }
  ASSERT_TRUE(service_->running()) << service_->log();
  EXPECT_EQ(http("GET", http_port_, "/healthz").status, 200);
  EXPECT_EQ(get("/v1/orders").status, 200);
}

TEST_F(Api, WithoutTokensTheApiIsLoopbackOnlyAndReadOnly) {
  auto service = start_service(http_port_);
  ASSERT_TRUE(wait_ready(http_port_)) << service->log();
  EXPECT_EQ(http("GET", http_port_, "/v1/orders").status, 200);
  EXPECT_EQ(http("GET", http_port_, "/v1/stats").status, 200);
  expect_problem(http("POST", http_port_, "/v1/orders/X/status", R"({"status":"CANCELLED","reason":"r"})"), 403,
                 "without --tokens");
  expect_problem(http("POST", http_port_, "/v1/dead-letters/replay", R"({"reason":"malformed"})"), 403);

  // Refused at start: a non-loopback address without tokens, and bad tokens files.
  testing::Process open_to_all(testing::bin("order-status-service"),
                               {"run", "--db", oss_, "--amqp", amqp_, "--http", "0.0.0.0:" + std::to_string(testing::free_port())});
  EXPECT_EQ(open_to_all.wait(30s), 2);
  EXPECT_NE(open_to_all.log().find("loopback"), std::string::npos) << open_to_all.log();

  const auto bad = tokens_path_ + ".bad";
  write_file(bad, R"([{"name": "x", "role": "admin", "sha256": "00"}])");
  testing::Process bad_tokens(testing::bin("order-status-service"),
                              {"run", "--db", oss_, "--amqp", amqp_, "--tokens", bad, "--http",
                               "127.0.0.1:" + std::to_string(testing::free_port())});
  EXPECT_EQ(bad_tokens.wait(30s), 2);
  EXPECT_NE(bad_tokens.log().find("[0].role: unknown role \"admin\""), std::string::npos) << bad_tokens.log();
  std::error_code ignored;
  std::filesystem::remove(bad, ignored);
  testing::Process missing(testing::bin("order-status-service"),
                           {"run", "--db", oss_, "--amqp", amqp_, "--tokens", "/nonexistent/tokens.json"});
  EXPECT_EQ(missing.wait(30s), 2);
  EXPECT_NE(missing.log().find("cannot open"), std::string::npos) << missing.log();
}

}  // namespace
}  // namespace oss::e2e

namespace oss::e2e {
namespace {

TEST_F(Api, EscalationsRaisedByACronPassAndResolvedByAMoveGoLive) {
  start_all();
  emit("crm", "ESC-1", "SUBMITTED");
  ASSERT_TRUE(wait_status("ESC-1", "SUBMITTED")) << service_->log();
  RawClient stream(http_port_);
  stream.send(std::string("GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + kViewerToken + "\r\n\r\n");
  ASSERT_TRUE(stream.read_until([](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; }, 5s));
  // A cron pass as of two days from now: SUBMITTED breaches (warning at 1h, critical at 24h).
  const auto at = oss::core::format_rfc3339(oss::core::SystemClock().now() + std::chrono::hours(48));
  testing::Process pass(testing::bin("order-status-service"),
                        std::vector<std::string>{"escalate", "--once", "--db", oss_, "--at", at});
  ASSERT_EQ(pass.wait(30s), 0) << pass.log();
  auto count_type = [&](const std::string& type) {
    long n = 0;
    for (const auto& e : parse_sse(stream.received))
      if (e.type == type) ++n;
    return n;
  };
  ASSERT_TRUE(stream.read_until([&](const std::string&) { return count_type("escalation_raised") == 2; }, 15s))
      << stream.received;
  for (const auto& e : parse_sse(stream.received)) {
    if (e.type != "escalation_raised") continue;
    const auto& j = e.data;
    EXPECT_EQ(j.at("subject"), "ESC-1");
    EXPECT_EQ(j.at("status"), "SUBMITTED");
  }
  // The order moves on: its escalations are resolved, and that is live too.
  emit("mes", "ESC-1", "PRICE_CALCULATED");
  ASSERT_TRUE(stream.read_until([&](const std::string&) { return count_type("escalation_resolved") == 2; }, 15s))
      << stream.received;
}

}  // namespace
}  // namespace oss::e2e
