#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "oss/http/message.hpp"
#include "oss/http/router.hpp"

namespace oss::http {

struct ServerOptions {
  std::string listen = "127.0.0.1:8080";     // host:port; port 0 = pick a free port
  std::size_t body_limit = 64 * std::size_t{1024};  // 413 problem+json beyond it
  std::size_t header_limit = 16 * std::size_t{1024};  // 431 beyond it
  std::chrono::seconds read_timeout{10};     // a request must arrive completely within this (408 if anything was read)
  std::chrono::seconds idle_timeout{30};     // keep-alive idle between requests
  std::chrono::seconds handler_timeout{30};  // a handler that never responds: 503 problem
  std::size_t max_connections = 1024;        // beyond it a new connection gets 503 and is closed
  std::chrono::seconds write_timeout{30};    // a client that does not take a response (or an SSE event) in time is dropped
};

/// An asynchronous HTTP/1.1 server on Boost.Beast (keep-alive, no TLS).
/// Runs on the given io_context (any number of threads may run it); each connection is a
/// session on its own strand. Nothing blocking runs on the I/O threads: handlers respond
/// asynchronously and their responses are posted back to the session's strand.
/// start() binds and throws std::system_error (bad address, port in use) or
/// std::invalid_argument (unparsable listen address). stop() is safe from any thread: it
/// closes the acceptor and every session; responses still pending are dropped. The destructor
/// calls stop(). The io_context must outlive the Server's pending operations (run it until
/// it returns after stop()).
class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions opts, Router router);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void start();
  std::uint16_t port() const;  // the bound port (valid after start())
  void stop();
  std::size_t connection_count() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

/// "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0", "localhost:8080" → endpoint.
/// Throws std::invalid_argument with a clear message (hosts must be IP literals or localhost:
/// resolving names would block).
boost::asio::ip::tcp::endpoint parse_listen_address(std::string_view address);

}  // namespace oss::http
