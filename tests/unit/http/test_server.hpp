#pragma once
// Test helpers: a Server on 127.0.0.1:0 in a background io_context thread, and a raw client
// whose every read has a deadline (so a broken server fails a test instead of hanging it).

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "oss/http/router.hpp"
#include "oss/http/server.hpp"

namespace oss::http::test {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

class TestServer {
 public:
  explicit TestServer(Router router, ServerOptions opts = {}) {
    opts.listen = "127.0.0.1:0";
    server_.emplace(io_, std::move(opts), std::move(router));
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    server_->stop();
    guard_.reset();
    thread_.join();
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  std::uint16_t port() const { return server_->port(); }
  Server& server() { return *server_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  std::optional<Server> server_;
  std::thread thread_;
};

using HttpResponse = bhttp::response<bhttp::string_body>;

class Client {
 public:
  explicit Client(std::uint16_t port, std::optional<int> rcvbuf = std::nullopt) {
    socket_.open(tcp::v4());
    if (rcvbuf) socket_.set_option(asio::socket_base::receive_buffer_size(*rcvbuf));
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }

  void send(std::string_view raw) { asio::write(socket_, asio::buffer(raw.data(), raw.size())); }
  // Best effort (the server may already have closed).
  bool try_send(std::string_view raw) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(raw.data(), raw.size()), ec);
    return !ec;
  }
  void shutdown_send() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
  }

  std::optional<HttpResponse> read_response(std::chrono::milliseconds timeout = 5000ms) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(std::uint64_t{64} * 1024 * 1024);
    boost::system::error_code result = asio::error::timed_out;
    bhttp::async_read(socket_, buf_, parser, [&](const boost::system::error_code& ec, std::size_t) { result = ec; });
    if (!run(timeout) || result) return std::nullopt;
    return parser.release();
  }

  /// Reads up to and including delim; nullopt on timeout or close.
  std::optional<std::string> read_until(std::string_view delim, std::chrono::milliseconds timeout = 5000ms) {
    boost::system::error_code result = asio::error::timed_out;
    std::size_t n = 0;
    asio::async_read_until(socket_, asio::dynamic_buffer(raw_), std::string(delim),
                           [&](const boost::system::error_code& ec, std::size_t len) {
                             result = ec;
                             n = len;
                           });
    if (!run(timeout) || result) return std::nullopt;
    std::string out = raw_.substr(0, n);
    raw_.erase(0, n);
    return out;
  }

  /// True when the server closes the connection (EOF or reset) within timeout; data read
  /// meanwhile is discarded.
  bool wait_closed(std::chrono::milliseconds timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::array<char, 65536> scratch{};
    while (std::chrono::steady_clock::now() < deadline) {
      boost::system::error_code result = asio::error::timed_out;
      socket_.async_read_some(asio::buffer(scratch), [&](const boost::system::error_code& ec, std::size_t) { result = ec; });
      if (!run(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())))
        return false;
      if (result) return true;
    }
    return false;
  }

 private:
  // Runs the pending operation; false (after cancelling it) when it did not finish in time.
  bool run(std::chrono::milliseconds timeout) {
    io_.restart();
    io_.run_for(timeout);
    if (io_.stopped()) return true;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    io_.restart();
    io_.run();
    return false;
  }

  asio::io_context io_;
  tcp::socket socket_{io_};
  boost::beast::flat_buffer buf_;
  std::string raw_;
};

inline std::string request(std::string_view method, std::string_view target, std::string_view body = {},
                           std::string_view extra_headers = {}) {
  std::string r = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n";
  r += extra_headers;
  if (!body.empty() || method == "POST") r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "\r\n";
  r += body;
  return r;
}

/// Polls cond until true or timeout (for state only observable from outside).
template <class Cond>
bool eventually(Cond cond, std::chrono::milliseconds timeout = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

}  // namespace oss::http::test
