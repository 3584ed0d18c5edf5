#include "oss/http/server.hpp"

#include <array>
#include <atomic>
#include <charconv>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <unordered_map>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "oss/http/sse_hub.hpp"
#include "sse_internal.hpp"
#include "url.hpp"

namespace oss::http {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxSseWriteBytes = 256 * std::size_t{1024};
constexpr std::size_t kMaxDrainBytes = 1024 * std::size_t{1024};
constexpr auto kMaxDrainTime = std::chrono::seconds(2);

// RFC 9110 IMF-fixdate, independent of the C locale.
std::string http_date() {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} GMT", kDays[tm.tm_wday % 7], tm.tm_mday,
                     kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string endpoint_string(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  return addr.is_v6() ? "[" + addr.to_string() + "]:" + std::to_string(ep.port())
                      : addr.to_string() + ":" + std::to_string(ep.port());
}

bool is_beast_http_error(const error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category();
}

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()), beast::string_view(b.data(), b.size()));
}

class Session;

/// Shared by the Server object and every session (sessions keep it alive while they run).
class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  ServerCore(asio::io_context& io, ServerOptions o, Router r)
      : opts(std::move(o)), router(std::move(r)), io_(io), acceptor_(asio::make_strand(io)),
        accept_retry_(acceptor_.get_executor()) {}

  void start();
  void stop();
  std::uint16_t port() const { return port_.load(); }
  std::size_t connection_count() {
    std::lock_guard lock(sessions_mutex_);
    return sessions_.size();
  }

  // Returns false when the server is stopping; `over_capacity` says whether the cap is hit.
  bool register_session(std::uint64_t id, const std::shared_ptr<Session>& s, bool& over_capacity);
  void unregister_session(std::uint64_t id) {
    std::lock_guard lock(sessions_mutex_);
    sessions_.erase(id);
  }
  bool stopped() const { return stopped_.load(); }

  const ServerOptions opts;
  const Router router;

 private:
  void do_accept();
  void on_accept(const error_code& ec, tcp::socket socket);

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_;
  std::atomic<std::uint16_t> port_{0};
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
  std::uint64_t next_session_id_ = 0;  // acceptor strand only
  std::mutex sessions_mutex_;
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>> sessions_;
};

/// One connection. Every member is touched only on the session's strand (the socket's
/// executor); handlers complete from anywhere and their responses are posted back here.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<ServerCore> core, std::uint64_t id)
      : socket_(std::move(socket)), core_(std::move(core)), opts_(core_->opts), id_(id),
        io_timer_(socket_.get_executor()), handler_timer_(socket_.get_executor()),
        keepalive_timer_(socket_.get_executor()) {
    error_code ec;
    const auto ep = socket_.remote_endpoint(ec);
    remote_ = ec ? std::string("unknown") : endpoint_string(ep);
  }
  ~Session() { core_->unregister_session(id_); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }
  void start_rejected() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      spdlog::warn("http connection from {} refused: {} connections open", self->remote_, self->opts_.max_connections);
      self->write_response(problem(503, "too many open connections; retry later"), true);
    });
  }
  void stop() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  // ---- deadlines: one timer for the current read or write; on expiry it cancels the socket ----
  void arm(Clock::duration d) {
    ++io_gen_;
    io_timed_out_ = false;
    io_timer_.expires_after(d);
    io_timer_.async_wait([self = shared_from_this(), gen = io_gen_](const error_code& ec) {
      if (ec || gen != self->io_gen_ || self->closed_) return;
      self->io_timed_out_ = true;
      error_code ignored;
      self->socket_.cancel(ignored);
    });
  }
  void disarm() {
    ++io_gen_;
    io_timer_.cancel();
  }

  // ---- request reading ----
  void do_read() {
    if (closed_) return;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(opts_.header_limit));
    parser_->body_limit(static_cast<std::uint64_t>(opts_.body_limit));
    method_ = "-";
    log_path_ = "-";
    if (buffer_.size() > 0) return read_request();  // pipelined bytes already here
    // Waiting for the first byte of a request is "idle" on a kept-alive connection.
    arm(first_request_ ? opts_.read_timeout : opts_.idle_timeout);
    socket_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](const error_code& ec, std::size_t n) {
      self->disarm();
      if (self->closed_) return;
      if (ec) return self->close();  // idle timeout, client went away: nothing to answer
      self->buffer_.commit(n);
      self->read_request();
    });
  }

  void read_request() {
    started_ = Clock::now();
    arm(opts_.read_timeout);
    bhttp::async_read(socket_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  // The completion handlers are bound member functions (bind_front_handler), not lambdas that
  // call them: a read or write chain is not recursion, and this way clang-tidy's
  // misc-no-recursion does not see one either.
  void on_read(const error_code& ec, std::size_t /*bytes*/) {
    const bool timed_out = io_timed_out_;
    disarm();
    if (closed_) return;
    if (ec == bhttp::error::end_of_stream) return graceful_close();
    if (ec) {
      if (timed_out)
        return write_response(
            problem(408, "the request was not received completely within " + std::to_string(opts_.read_timeout.count()) + "s"),
            true);
      if (ec == bhttp::error::header_limit)
        return write_response(
            problem(431, "request headers exceed " + std::to_string(opts_.header_limit) + " bytes"), true);
      if (ec == bhttp::error::body_limit)
        return write_response(problem(413, "request body exceeds " + std::to_string(opts_.body_limit) + " bytes"), true);
      if (is_beast_http_error(ec) && ec != bhttp::error::partial_message)
        return write_response(problem(400, "malformed HTTP request: " + ec.message()), true);
      return close();  // connection reset, EOF mid-request: nobody to answer
    }
    handle_request();
  }

  // ---- dispatch ----
  void handle_request() {
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    method_ = std::string(msg.method_string());

    Request req;
    req.method = method_;
    req.target = std::string(msg.target());
    req.remote_address = remote_;
    const auto qpos = req.target.find('?');
    const std::string_view raw_path = std::string_view(req.target).substr(0, qpos);
    log_path_ = std::string(raw_path);
    auto segments = Router::split_path(raw_path);
    auto path = detail::percent_decode(raw_path, false);
    if (!segments || !path) return write_response(problem(400, "the request path is not a valid origin-form path"), true);
    req.path = std::move(*path);
    if (qpos != std::string::npos) {
      auto q = detail::parse_query(std::string_view(req.target).substr(qpos + 1));
      if (!q) return write_response(problem(400, "the query string has a malformed percent escape"), true);
      req.query = std::move(*q);
    }
    req.headers.reserve(static_cast<std::size_t>(std::distance(msg.begin(), msg.end())));
    for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(msg.body());

    auto m = core_->router.match(req.method, *segments);
    switch (m.kind) {
      case Router::Match::Kind::not_found:
        return write_response(problem(404, "no resource at " + req.path), false);
      case Router::Match::Kind::method_not_allowed: {
        Response r = problem(405, "method " + req.method + " is not allowed on " + req.path);
        r.headers.emplace_back("Allow", m.allow);
        return write_response(std::move(r), false);
      }
      case Router::Match::Kind::found:
        break;
    }
    req.params = std::move(m.params);
    if (m.sse_hub) return start_sse(req, m);
    invoke(*m.handler, std::move(req));
  }

  void invoke(const Handler& handler, Request req) {
    const std::uint64_t seq = ++seq_;
    awaiting_ = true;
    handler_timer_.expires_after(opts_.handler_timeout);
    handler_timer_.async_wait([self = shared_from_this(), seq](const error_code& ec) {
      if (ec || !self->awaiting_ || self->seq_ != seq || self->closed_) return;
      spdlog::warn("http handler for {} {} did not respond within {}s", self->method_, self->log_path_,
                   self->opts_.handler_timeout.count());
      self->finish(seq, problem(503, "the request was not handled within " +
                                         std::to_string(self->opts_.handler_timeout.count()) + "s"));
    });

    auto answered = std::make_shared<std::atomic<bool>>(false);
    // Weak: a Respond kept past the connection's life (or the io_context's) is a harmless
    // no-op. The pending handler timer keeps the session alive while it waits.
    Respond respond = [weak = weak_from_this(), seq, answered](Response r) {
      if (answered->exchange(true)) {
        spdlog::warn("http handler responded twice; the second response is ignored");
        return;
      }
      auto self = weak.lock();
      if (!self) return;
      auto ex = self->socket_.get_executor();
      asio::post(ex, [self = std::move(self), seq, r = std::move(r)]() mutable { self->finish(seq, std::move(r)); });
    };
    try {
      handler(std::move(req), std::move(respond));
    } catch (const std::exception& e) {
      spdlog::error("http handler for {} {} threw: {}", method_, log_path_, e.what());
      if (!answered->exchange(true)) finish(seq, problem(500, "internal error"));
    } catch (...) {
      // Request boundary: a handler bug must never take the process down; it is logged and
      // answered with 500. (The one place we swallow unknown exceptions.)
      spdlog::error("http handler for {} {} threw a non-std exception", method_, log_path_);
      if (!answered->exchange(true)) finish(seq, problem(500, "internal error"));
    }
  }

  void finish(std::uint64_t seq, Response r) {
    if (closed_ || !awaiting_ || seq != seq_) {
      spdlog::debug("http response for a finished request dropped (status {})", r.status);
      return;
    }
    awaiting_ = false;
    handler_timer_.cancel();
    write_response(std::move(r), false);
  }

  // ---- writing ----
  void write_response(Response r, bool force_close) {
    if (closed_) return;
    if (r.status < 200 || r.status > 599) {
      spdlog::error("http handler for {} {} produced invalid status {}", method_, log_path_, r.status);
      r = problem(500, "internal error");
    }
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->version(version_ == 10 ? 10 : 11);
    res->result(r.status);
    res->set(bhttp::field::date, http_date());
    const bool no_body = r.status == 204 || r.status == 304;
    if (!no_body && !r.content_type.empty() && !has_crlf(r.content_type))
      res->set(bhttp::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) {
      if (name.empty() || has_crlf(name) || has_crlf(value) || name.find(':') != std::string::npos) {
        spdlog::warn("http response header '{}' dropped: invalid characters", name);
        continue;
      }
      if (iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") || iequals(name, "Connection") ||
          iequals(name, "Date"))
        continue;
      res->insert(name, value);
    }
    close_after_write_ = force_close || !keep_alive_ || core_->stopped();
    res->set(bhttp::field::connection, close_after_write_ ? "close" : "keep-alive");
    if (!no_body) res->body() = std::move(r.body);
    res->prepare_payload();
    status_ = r.status;
    res_ = res;
    arm(opts_.write_timeout);
    bhttp::async_write(socket_, *res_,
                       beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(const error_code& ec, std::size_t /*bytes*/) {
    disarm();
    res_.reset();
    const auto ms = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
    spdlog::debug("http_request method={} path={} status={} duration_ms={:.3f} remote={}", method_, log_path_,
                  status_, ms, remote_);
    if (closed_) return;
    if (ec) return close();
    if (close_after_write_) return graceful_close();
    first_request_ = false;
    do_read();
  }

  // Half-close, then read and discard what the client still sends for a short while, so that
  // it sees our response instead of a reset (e.g. after a 413 with the body still arriving).
  void graceful_close() {
    if (closed_) return;
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    arm(std::min<Clock::duration>(opts_.read_timeout, kMaxDrainTime));
    drain();
  }
  void drain() {
    socket_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](const error_code& ec, std::size_t n) {
      self->drained_ += n;
      if (ec || self->closed_ || self->drained_ > kMaxDrainBytes) return self->close();
      self->drain();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    disarm();
    handler_timer_.cancel();
    keepalive_timer_.cancel();
    if (hub_ && sse_queue_) {
      hub_->unsubscribe(sse_queue_.get());
      spdlog::debug("sse client {} disconnected", remote_);
    }
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  // ---- server-sent events ----
  void start_sse(const Request& req, const Router::Match& m) {
    if (m.authorize != nullptr && *m.authorize) {
      try {
        if (auto refused = (*m.authorize)(req)) return write_response(std::move(*refused), false);
      } catch (const std::exception& e) {
        spdlog::error("sse authorize for {} threw: {}", log_path_, e.what());
        return write_response(problem(500, "internal error"), false);
      }
    }
    std::optional<std::uint64_t> last_event_id;
    if (auto h = req.header("Last-Event-ID")) {
      std::uint64_t v = 0;
      const auto [ptr, err] = std::from_chars(h->data(), h->data() + h->size(), v);
      if (err == std::errc() && ptr == h->data() + h->size()) last_event_id = v;
    }
    hub_ = detail::SseHubAccess::state(*m.sse_hub);
    std::weak_ptr<Session> weak = shared_from_this();
    auto ex = socket_.get_executor();
    sse_queue_ = std::make_shared<detail::SseClientQueue>(hub_->max_queued(), [weak, ex] {
      asio::post(ex, [weak] {
        if (auto s = weak.lock()) s->sse_pump();
      });
    });
    // No Content-Length: the stream ends when the connection closes.
    sse_buf_ = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
               "Connection: close\r\nX-Accel-Buffering: no\r\nDate: " + http_date() + "\r\n\r\n";
    sse_writing_ = true;  // the header goes first; replayed events follow from the queue
    hub_->subscribe(sse_queue_, last_event_id);
    spdlog::debug("sse client {} connected to {} (last_event_id={})", remote_, log_path_,
                  last_event_id ? std::to_string(*last_event_id) : std::string("none"));
    arm(opts_.write_timeout);
    asio::async_write(socket_, asio::buffer(sse_buf_),
                      beast::bind_front_handler(&Session::on_sse_write, shared_from_this()));
    sse_read();
    schedule_keepalive();
  }

  void sse_pump() {
    if (closed_) return;
    if (sse_queue_->overflowed()) {
      spdlog::warn("sse client {} fell more than {} events behind; disconnecting", remote_, hub_->max_queued());
      return close();  // also aborts a write stuck on this client
    }
    if (sse_writing_) return;
    sse_write_next();
  }

  void sse_write_next() {
    switch (sse_queue_->take(sse_buf_, kMaxSseWriteBytes)) {
      case detail::SseClientQueue::Take::overflow:
        spdlog::warn("sse client {} fell more than {} events behind; disconnecting", remote_, hub_->max_queued());
        return close();
      case detail::SseClientQueue::Take::empty:
        sse_writing_ = false;
        return;
      case detail::SseClientQueue::Take::data:
        break;
    }
    sse_writing_ = true;
    arm(opts_.write_timeout);
    asio::async_write(socket_, asio::buffer(sse_buf_),
                      beast::bind_front_handler(&Session::on_sse_write, shared_from_this()));
  }

  void on_sse_write(const error_code& ec, std::size_t /*bytes*/) {
    disarm();
    if (closed_) return;
    if (ec) return close();
    sse_write_next();
  }

  // The client sends nothing more; reading only notices when it goes away.
  void sse_read() {
    socket_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](const error_code& ec, std::size_t) {
      if (ec || self->closed_) return self->close();
      self->sse_read();
    });
  }

  void schedule_keepalive() {
    keepalive_timer_.expires_after(hub_->keepalive());
    keepalive_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->closed_) return;
      self->sse_queue_->push_keepalive();
      self->schedule_keepalive();
    });
  }

  tcp::socket socket_;
  std::shared_ptr<ServerCore> core_;
  const ServerOptions& opts_;
  const std::uint64_t id_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  asio::steady_timer io_timer_;
  asio::steady_timer handler_timer_;
  asio::steady_timer keepalive_timer_;
  std::uint64_t io_gen_ = 0;
  bool io_timed_out_ = false;
  bool closed_ = false;
  bool first_request_ = true;
  std::array<char, 1024> scratch_{};
  std::size_t drained_ = 0;

  // The request being served.
  std::uint64_t seq_ = 0;
  bool awaiting_ = false;
  bool keep_alive_ = false;
  bool close_after_write_ = true;
  unsigned version_ = 11;
  unsigned status_ = 0;
  std::string method_ = "-";
  std::string log_path_ = "-";  // raw path without query; never headers
  Clock::time_point started_ = Clock::now();
  std::shared_ptr<bhttp::response<bhttp::string_body>> res_;

  // Server-sent events mode.
  std::shared_ptr<detail::SseHubState> hub_;
  std::shared_ptr<detail::SseClientQueue> sse_queue_;
  std::string sse_buf_;
  bool sse_writing_ = false;
};

bool ServerCore::register_session(std::uint64_t id, const std::shared_ptr<Session>& s, bool& over_capacity) {
  std::lock_guard lock(sessions_mutex_);
  if (stopped_.load()) return false;
  over_capacity = sessions_.size() >= opts.max_connections;
  sessions_.emplace(id, s);
  return true;
}

void ServerCore::start() {
  if (started_.exchange(true)) throw std::logic_error("http server already started");
  const tcp::endpoint ep = parse_listen_address(opts.listen);
  error_code ec;
  const auto fail = [&](const char* what) {
    throw std::system_error(ec, "http: cannot listen on " + opts.listen + " (" + what + ")");
  };
  acceptor_.open(ep.protocol(), ec);
  if (ec) fail("open");
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) fail("SO_REUSEADDR");
  acceptor_.bind(ep, ec);
  if (ec) fail("bind");
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("listen");
  port_ = acceptor_.local_endpoint(ec).port();
  spdlog::info("http server listening on {}", endpoint_string(tcp::endpoint(ep.address(), port_.load())));
  asio::dispatch(acceptor_.get_executor(), [self = shared_from_this()] { self->do_accept(); });
}

void ServerCore::do_accept() {
  acceptor_.async_accept(asio::make_strand(io_), [self = shared_from_this()](const error_code& ec, tcp::socket s) {
    self->on_accept(ec, std::move(s));
  });
}

void ServerCore::on_accept(const error_code& ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // E.g. EMFILE: back off briefly instead of spinning.
    spdlog::warn("http accept failed: {}", ec.message());
    accept_retry_.expires_after(std::chrono::milliseconds(100));
    accept_retry_.async_wait([self = shared_from_this()](const error_code& e) {
      if (!e && !self->stopped()) self->do_accept();
    });
    return;
  }
  const std::uint64_t id = ++next_session_id_;
  auto session = std::make_shared<Session>(std::move(socket), shared_from_this(), id);
  bool over = false;
  if (register_session(id, session, over)) {
    if (over) session->start_rejected();
    else session->start();
  }
  do_accept();
}

void ServerCore::stop() {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(sessions_mutex_);
    if (stopped_.exchange(true)) return;
    for (auto& [id, weak] : sessions_)
      if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    error_code ignored;
    self->acceptor_.close(ignored);
    self->accept_retry_.cancel();
  });
  for (auto& s : live) s->stop();
  spdlog::info("http server stopping: closed {} connection(s)", live.size());
}

void validate(const ServerOptions& o) {
  if (o.body_limit == 0) throw std::invalid_argument("http: body_limit must be > 0");
  if (o.header_limit == 0 || o.header_limit > 0xffffffffu) throw std::invalid_argument("http: header_limit out of range");
  if (o.read_timeout.count() <= 0 || o.idle_timeout.count() <= 0 || o.handler_timeout.count() <= 0 ||
      o.write_timeout.count() <= 0)
    throw std::invalid_argument("http: timeouts must be > 0");
  if (o.max_connections == 0) throw std::invalid_argument("http: max_connections must be > 0");
}

}  // namespace

struct Server::State {
  std::shared_ptr<ServerCore> core;
};

Server::Server(boost::asio::io_context& io, ServerOptions opts, Router router) {
  validate(opts);
  parse_listen_address(opts.listen);  // misconfiguration fails at construction
  state_ = std::make_shared<State>(State{std::make_shared<ServerCore>(io, std::move(opts), std::move(router))});
}

Server::~Server() { stop(); }

void Server::start() { state_->core->start(); }
std::uint16_t Server::port() const { return state_->core->port(); }
void Server::stop() { state_->core->stop(); }
std::size_t Server::connection_count() const { return state_->core->connection_count(); }

boost::asio::ip::tcp::endpoint parse_listen_address(std::string_view address) {
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("invalid listen address '" + std::string(address) + "': " + why +
                                 " (expected host:port, e.g. 127.0.0.1:8080 or [::1]:8080)");
  };
  std::string_view host;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':')
      throw bad("unterminated IPv6 address or missing port");
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos) throw bad("missing port");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) throw bad("IPv6 addresses must be in brackets");
  }
  if (host.empty()) throw bad("missing host");
  unsigned long port_number = 0;
  const auto [ptr, err] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (port.empty() || err != std::errc() || ptr != port.data() + port.size() || port_number > 65535)
    throw bad("port must be a number 0-65535");
  boost::asio::ip::address addr;
  if (host == "localhost") {
    addr = boost::asio::ip::address_v4::loopback();
  } else {
    error_code ec;
    addr = boost::asio::ip::make_address(std::string(host), ec);
    if (ec) throw bad("host must be an IP address or localhost");
  }
  return {addr, static_cast<std::uint16_t>(port_number)};
}

}  // namespace oss::http
