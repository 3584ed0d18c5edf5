#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace oss::amqp {

/// Base of every runtime failure this library reports. Misconfiguration that can never work
/// (a malformed URL, amqps://) is reported as std::invalid_argument instead, so that it is
/// fatal at start rather than retried.
struct Error : std::runtime_error {
  using runtime_error::runtime_error;
};

/// Transient: connect refused or timed out, socket closed, heartbeat or I/O timeout, the broker
/// closed the connection (reply_code is then the broker's code, e.g. 320 CONNECTION_FORCED;
/// 0 when the failure was local). The Connection is unusable afterwards; reconnect later.
struct ConnectionError : Error {
  explicit ConnectionError(const std::string& what, std::uint16_t code = 0)
      : Error(what), reply_code(code) {}
  std::uint16_t reply_code;
};

/// The broker cancelled our consumer (its queue was deleted, or it failed over). A
/// ConnectionError so that callers reconnect and consume again; the Connection is unusable.
struct ConsumerCancelled : ConnectionError {
  explicit ConsumerCancelled(const std::string& tag)
      : ConnectionError("amqp: consumer '" + tag + "' cancelled by the broker"),
        consumer_tag(tag) {}
  std::string consumer_tag;
};

/// Permanent configuration error: login refused (403 ACCESS_REFUSED, bad credentials) or the
/// virtual host is not accessible (530 NOT_ALLOWED). Retrying will not help.
struct AuthError : Error {
  explicit AuthError(const std::string& what, std::uint16_t code = 0)
      : Error(what), reply_code(code) {}
  std::uint16_t reply_code;
};

/// The broker closed our channel (404 NOT_FOUND, 406 PRECONDITION_FAILED, ...). The
/// Connection is unusable afterwards (is_open() is false); the caller reconnects.
struct ChannelError : Error {
  ChannelError(std::uint16_t code, const std::string& text)
      : Error("amqp: channel closed by broker: " + std::to_string(code) + " " + text),
        reply_code(code),
        reply_text(text) {}
  std::uint16_t reply_code;
  std::string reply_text;
};

}  // namespace oss::amqp
