#include "oss/amqp/connection.hpp"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <spdlog/spdlog.h>
#include <sys/time.h>

#include <algorithm>
#include <climits>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "oss/amqp/nodes.hpp"
#include "oss/amqp/url.hpp"
#include "oss/core/cli.hpp"
#include "oss/core/url.hpp"
#include "oss/metrics/registry.hpp"
#include "table_codec.hpp"

namespace oss::amqp {
namespace {

using Clock = std::chrono::steady_clock;
using detail::to_bytes;
using detail::to_string;

constexpr amqp_channel_t kChannel = 1;
// publish() reads whatever the broker already sent every this many calls, so that a channel
// close (unknown exchange, oversized message) or connection.blocked is noticed during a long
// burst, and acks do not pile up in the socket while the caller only writes.
constexpr unsigned kDrainEveryPublishes = 64;
// A body larger than this is grown as it arrives instead of reserved up front: the size comes
// from the network.
constexpr std::uint64_t kMaxBodyReserve = std::uint64_t{16} * 1024 * 1024;

struct StateDeleter {
  void operator()(amqp_connection_state_t state) const noexcept { amqp_destroy_connection(state); }
};
using StatePtr = std::unique_ptr<amqp_connection_state_t_, StateDeleter>;

timeval to_timeval(std::chrono::microseconds d) {
  if (d.count() < 0) d = std::chrono::microseconds{0};
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(d.count() % 1'000'000);
  return tv;
}

timeval remaining(Clock::time_point deadline) {
  return to_timeval(std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()));
}

std::string status_text(int status) { return amqp_error_string2(status); }

// Builds the properties of a publish. Holds the encoded headers, which point into `message`.
class PublishProperties {
 public:
  explicit PublishProperties(const Message& message) : headers_(message.headers) {
    props_._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props_.delivery_mode = message.persistent ? 2 : 1;
    if (!message.content_type.empty()) {
      props_._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
      props_.content_type = to_bytes(message.content_type);
    }
    if (!message.message_id.empty()) {
      props_._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
      props_.message_id = to_bytes(message.message_id);
    }
    if (!message.type.empty()) {
      props_._flags |= AMQP_BASIC_TYPE_FLAG;
      props_.type = to_bytes(message.type);
    }
    if (message.timestamp > 0) {
      props_._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
      props_.timestamp = static_cast<std::uint64_t>(message.timestamp);
    }
    if (!message.headers.empty()) {
      props_._flags |= AMQP_BASIC_HEADERS_FLAG;
      props_.headers = headers_.table();
    }
  }
  const amqp_basic_properties_t* get() const noexcept { return &props_; }

 private:
  detail::EncodedTable headers_;
  amqp_basic_properties_t props_{};
};

// The message properties we report for deliveries and returns, copied out of rabbitmq-c's pool.
struct ReceivedProperties {
  std::string message_id, type, content_type;
  std::int64_t timestamp = 0;
  Table headers;
};

ReceivedProperties copy_properties(const amqp_basic_properties_t& p) {
  ReceivedProperties out;
  if ((p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0) out.message_id = to_string(p.message_id);
  if ((p._flags & AMQP_BASIC_TYPE_FLAG) != 0) out.type = to_string(p.type);
  if ((p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) != 0) out.content_type = to_string(p.content_type);
  if ((p._flags & AMQP_BASIC_TIMESTAMP_FLAG) != 0 && p.timestamp <= INT64_MAX) {
    out.timestamp = static_cast<std::int64_t>(p.timestamp);
  }
  if ((p._flags & AMQP_BASIC_HEADERS_FLAG) != 0) out.headers = detail::decode_table(p.headers);
  return out;
}

// Process-wide failover state: for each URL list, the node to try first; for each node
// (host:port), the connections open on it.
class Failover {
 public:
  static Failover& instance() {
    static Failover f;
    return f;
  }
  void add_nodes(const std::vector<std::string>& nodes) {
    std::lock_guard lock(mutex_);
    for (const auto& n : nodes) {
      if (open_.emplace(n, 0).second) order_.push_back(n);
    }
  }
  std::size_t first(const std::string& list) {
    std::lock_guard lock(mutex_);
    return first_[list];
  }
  void connected(const std::string& list, std::size_t index, const std::string& node) {
    std::lock_guard lock(mutex_);
    first_[list] = index;
    ++open_[node];
  }
  void closed(const std::string& node) {
    std::lock_guard lock(mutex_);
    --open_[node];
  }
  // The connection on node `index` of `list` was lost: the next attempt starts at the next node.
  std::size_t lost(const std::string& list, std::size_t index, std::size_t count) {
    std::lock_guard lock(mutex_);
    auto& f = first_[list];
    if (f == index) f = (index + 1) % count;
    return f;
  }
  std::vector<NodeConnections> snapshot() const {
    std::lock_guard lock(mutex_);
    std::vector<NodeConnections> out;
    for (const auto& n : order_) out.push_back({n, open_.at(n)});
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::size_t> first_;
  std::map<std::string, int> open_;
  std::vector<std::string> order_;
};

std::string host_port(const UrlParts& u) { return u.host + ":" + std::to_string(u.port); }

}  // namespace

std::vector<NodeConnections> connections_by_node() { return Failover::instance().snapshot(); }

void expose_node_metrics(metrics::Registry& registry) {
  registry.on_collect([&registry] {
    for (const auto& n : connections_by_node()) {
      registry
          .gauge(
              "oss_amqp_node_connections",
              "AMQP connections this process has open on each configured broker node (host:port)",
              {{"node", n.node}})
          .set(n.open);
    }
  });
}

// Frames are read by one hand-written pump (pump_one) rather than amqp_consume_message:
// amqp_consume_message only understands basic.deliver and reports every other method as
// AMQP_STATUS_UNEXPECTED_STATE, leaving the caller to fetch it with amqp_simple_wait_frame and
// to read a basic.return's content by hand. Confirms, returns, deliveries and closes arrive
// interleaved on the same channel, so one loop that dispatches every frame is simpler and keeps
// the buffers (confirms_, deliveries_) in one place. RPCs (declare, qos, consume...) use
// rabbitmq-c's amqp_simple_rpc, which queues unrelated frames for the pump to read later.
class Connection::Impl {
 public:
  explicit Impl(ConnectionOptions options) : options_(std::move(options)) { open(); }

  ~Impl() {
    uncount();
    if (state_ && socket_alive_) {
      // Bounded by the RPC timeout (io_timeout). The broker requeues unacked deliveries.
      const amqp_rpc_reply_t r = amqp_connection_close(state_.get(), AMQP_REPLY_SUCCESS);
      if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        spdlog::debug("amqp: connection.close did not complete cleanly ({})", masked_url_);
      }
    }
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  bool is_open() const noexcept { return usable_; }
  const std::string& node() const noexcept { return masked_url_; }
  std::size_t node_index() const noexcept { return node_index_; }
  std::size_t node_count() const noexcept { return node_count_; }

  void declare_exchange(const std::string& name, const std::string& type, bool durable,
                        const Table& args) {
    ensure_usable();
    detail::EncodedTable table(args);
    amqp_exchange_declare(state_.get(), kChannel, to_bytes(name), to_bytes(type), 0,
                          durable ? 1 : 0, 0, 0, table.table());
    check_rpc("exchange.declare");
  }

  void delete_exchange(const std::string& name) {
    ensure_usable();
    amqp_exchange_delete(state_.get(), kChannel, to_bytes(name), 0);
    check_rpc("exchange.delete");
  }

  void declare_queue(const std::string& name, const QueueOptions& options) {
    ensure_usable();
    detail::EncodedTable table(options.arguments);
    amqp_queue_declare(state_.get(), kChannel, to_bytes(name), 0, options.durable ? 1 : 0, 0, 0,
                       table.table());
    check_rpc("queue.declare");
  }

  std::uint32_t queue_message_count(const std::string& name) {
    ensure_usable();
    const amqp_queue_declare_ok_t* ok =
        amqp_queue_declare(state_.get(), kChannel, to_bytes(name), 1, 0, 0, 0, amqp_empty_table);
    check_rpc("queue.declare(passive)");
    return ok->message_count;
  }

  void bind_queue(const std::string& queue, const std::string& exchange,
                  const std::string& routing_key, const Table& args) {
    ensure_usable();
    detail::EncodedTable table(args);
    amqp_queue_bind(state_.get(), kChannel, to_bytes(queue), to_bytes(exchange),
                    to_bytes(routing_key), table.table());
    check_rpc("queue.bind");
  }

  void delete_queue(const std::string& name) {
    ensure_usable();
    amqp_queue_delete(state_.get(), kChannel, to_bytes(name), 0, 0);
    check_rpc("queue.delete");
  }

  void purge_queue(const std::string& name) {
    ensure_usable();
    amqp_queue_purge(state_.get(), kChannel, to_bytes(name));
    check_rpc("queue.purge");
  }

  void enable_confirms() {
    ensure_usable();
    if (confirms_enabled_) return;
    amqp_confirm_select(state_.get(), kChannel);
    check_rpc("confirm.select");
    confirms_enabled_ = true;
    next_publish_seq_ = 1;
  }

  std::uint64_t publish(const Message& message, bool mandatory) {
    ensure_usable();
    // Drain before writing: if the drain throws, this message was not sent and has no number.
    if (++publishes_since_drain_ >= kDrainEveryPublishes) {
      publishes_since_drain_ = 0;
      drain_ready();
    }
    if (blocked_) wait_until_unblocked();
    const PublishProperties props(message);
    const int status = amqp_basic_publish(state_.get(), kChannel, to_bytes(message.exchange),
                                          to_bytes(message.routing_key), mandatory ? 1 : 0, 0,
                                          props.get(), to_bytes(message.body));
    if (status != AMQP_STATUS_OK) fail_connection("basic.publish", status);
    if (!confirms_enabled_) return 0;
    const std::uint64_t seq = next_publish_seq_++;
    unconfirmed_.insert(unconfirmed_.end(), seq);
    return seq;
  }

  ConfirmBatch wait_confirms(std::uint64_t up_to, std::chrono::milliseconds timeout) {
    // After an error, still hand out the confirms that had arrived before it, without reading:
    // the caller then republishes fewer messages.
    if (!usable_ && has_buffered_confirms()) return std::exchange(confirms_, ConfirmBatch{});
    ensure_usable();
    const auto deadline = Clock::now() + timeout;
    while (!unconfirmed_.empty() && *unconfirmed_.begin() <= up_to) {
      if (!pump_one(deadline)) break;
    }
    return std::exchange(confirms_, ConfirmBatch{});
  }

  void set_prefetch(std::uint16_t count) {
    ensure_usable();
    amqp_basic_qos(state_.get(), kChannel, 0, count, 0);
    check_rpc("basic.qos");
  }

  std::string consume(const std::string& queue, const std::string& consumer_tag, bool exclusive) {
    ensure_usable();
    const amqp_basic_consume_ok_t* ok =
        amqp_basic_consume(state_.get(), kChannel, to_bytes(queue),
                           consumer_tag.empty() ? amqp_empty_bytes : to_bytes(consumer_tag), 0, 0,
                           exclusive ? 1 : 0, amqp_empty_table);
    check_rpc("basic.consume");
    return to_string(ok->consumer_tag);
  }

  void keep_alive() {
    ensure_usable();
    drain_ready();  // rabbitmq-c sends a due heartbeat before it looks for frames
  }

  std::optional<Delivery> next_delivery(std::chrono::milliseconds timeout) {
    ensure_usable();
    const auto deadline = Clock::now() + timeout;
    while (deliveries_.empty()) {
      if (!pump_one(deadline)) return std::nullopt;
    }
    Delivery d = std::move(deliveries_.front());
    deliveries_.pop_front();
    return d;
  }

  void ack(std::uint64_t delivery_tag, bool multiple) {
    ensure_usable();
    const int status = amqp_basic_ack(state_.get(), kChannel, delivery_tag, multiple ? 1 : 0);
    if (status != AMQP_STATUS_OK) fail_connection("basic.ack", status);
  }

  void nack(std::uint64_t delivery_tag, bool multiple, bool requeue) {
    ensure_usable();
    const int status =
        amqp_basic_nack(state_.get(), kChannel, delivery_tag, multiple ? 1 : 0, requeue ? 1 : 0);
    if (status != AMQP_STATUS_OK) fail_connection("basic.nack", status);
  }

  void cancel(const std::string& consumer_tag) {
    ensure_usable();
    amqp_basic_cancel(state_.get(), kChannel, to_bytes(consumer_tag));
    check_rpc("basic.cancel");
  }

 private:
  // Tries the nodes of the URL list in turn (see the class comment); a single URL is one node.
  void open() {
    std::vector<std::string> urls;
    if (options_.url.find(',') == std::string::npos) {
      urls.push_back(options_.url);
    } else {
      try {
        urls = core::parse_amqp_urls(options_.url, "amqp URL list");
      } catch (const core::UsageError& e) {
        throw std::invalid_argument(e.what());  // fatal misconfiguration, never retried
      }
    }
    std::vector<UrlParts> parts;
    std::vector<std::string> nodes;
    for (const auto& u : urls) {
      parts.push_back(parse_url(u));  // std::invalid_argument: fatal misconfiguration
      nodes.push_back(host_port(parts.back()));
    }
    if (options_.frame_max < 4096 || options_.frame_max > static_cast<std::uint32_t>(INT_MAX)) {
      throw std::invalid_argument("amqp: frame_max must be in [4096, 2^31-1]");
    }
    auto& failover = Failover::instance();
    failover.add_nodes(nodes);
    node_count_ = urls.size();
    if (node_count_ == 1) {
      masked_url_ = mask_url(urls[0]);
      open_node(parts[0]);
      counted_node_ = nodes[0];
      failover.connected(options_.url, 0, counted_node_);
      spdlog::info("amqp: connected to {} (connection_name '{}')", masked_url_,
                   options_.connection_name);
      return;
    }
    const std::size_t first = failover.first(options_.url) % node_count_;
    std::string errors;
    bool all_refused_login = true;
    for (std::size_t k = 0; k < node_count_; ++k) {
      const std::size_t i = (first + k) % node_count_;
      masked_url_ = mask_url(urls[i]);
      try {
        open_node(parts[i]);
        node_index_ = i;
        counted_node_ = nodes[i];
        failover.connected(options_.url, i, counted_node_);
        spdlog::info("amqp: connected to {} (node {} of {}; connection_name '{}')", masked_url_,
                     i + 1, node_count_, options_.connection_name);
        return;
      } catch (const AuthError& e) {
        errors += std::string(errors.empty() ? "" : "; ") + e.what();
      } catch (const ConnectionError& e) {
        all_refused_login = false;
        errors += std::string(errors.empty() ? "" : "; ") + e.what();
      }
      spdlog::warn("amqp: node {} of {} ({}) unavailable; trying the next", i + 1, node_count_,
                   masked_url_);
      state_.reset();
      socket_alive_ = false;
      usable_ = false;
    }
    masked_url_ = core::mask_url(options_.url);
    const std::string what =
        "amqp: none of the " + std::to_string(node_count_) + " nodes is available: " + errors;
    if (all_refused_login) throw AuthError(what);
    throw ConnectionError(what);
  }

  void open_node(const UrlParts& url) {
    state_.reset(amqp_new_connection());
    if (!state_) throw ConnectionError("amqp: cannot allocate a connection");
    amqp_socket_t* socket = amqp_tcp_socket_new(state_.get());
    if (socket == nullptr) throw ConnectionError("amqp: cannot create a TCP socket");

    const timeval connect_tv = to_timeval(options_.connect_timeout);
    const int status = amqp_socket_open_noblock(socket, url.host.c_str(), url.port, &connect_tv);
    if (status != AMQP_STATUS_OK) {
      throw ConnectionError("amqp: cannot connect to " + masked_url_ + ": " + status_text(status));
    }
    socket_alive_ = true;
    if (amqp_set_handshake_timeout(state_.get(), &connect_tv) != AMQP_STATUS_OK) {
      throw ConnectionError("amqp: cannot set the handshake timeout");
    }
    const timeval rpc_tv = to_timeval(options_.io_timeout);
    if (amqp_set_rpc_timeout(state_.get(), &rpc_tv) != AMQP_STATUS_OK) {
      throw ConnectionError("amqp: cannot set the RPC timeout");
    }

    login(url);

    amqp_channel_open(state_.get(), kChannel);
    check_rpc("channel.open");
    usable_ = true;
  }

  void uncount() noexcept {
    if (counted_node_.empty()) return;
    Failover::instance().closed(counted_node_);
    counted_node_.clear();
  }

  // The connection is gone (not merely its channel): with a cluster, move the next attempt on.
  void lost() noexcept {
    const bool was_counted = !counted_node_.empty();
    uncount();
    if (node_count_ > 1 && was_counted) {
      const std::size_t next = Failover::instance().lost(options_.url, node_index_, node_count_);
      spdlog::warn(
          "amqp: lost the connection to {} (node {} of {}); reconnecting starts at node {}",
          masked_url_, node_index_ + 1, node_count_, next + 1);
    }
  }

  void login(const UrlParts& url) {
    // rabbitmq-c advertises only authentication_failure_close by default; ask for the
    // notifications we handle. (0.11 merges these capabilities with its own.)
    const std::string cap_keys[] = {"authentication_failure_close", "consumer_cancel_notify",
                                    "connection.blocked", "basic.nack", "publisher_confirms"};
    amqp_table_entry_t caps[std::size(cap_keys)];
    for (std::size_t i = 0; i < std::size(cap_keys); ++i) {
      caps[i].key = to_bytes(cap_keys[i]);
      caps[i].value.kind = AMQP_FIELD_KIND_BOOLEAN;
      caps[i].value.value.boolean = 1;
    }
    const std::string caps_key = "capabilities";
    const std::string name_key = "connection_name";
    amqp_table_entry_t props[2];
    props[0].key = to_bytes(caps_key);
    props[0].value.kind = AMQP_FIELD_KIND_TABLE;
    props[0].value.value.table.num_entries = static_cast<int>(std::size(caps));
    props[0].value.value.table.entries = caps;
    props[1].key = to_bytes(name_key);
    props[1].value.kind = AMQP_FIELD_KIND_UTF8;
    props[1].value.value.bytes = to_bytes(options_.connection_name);
    amqp_table_t properties;
    properties.num_entries = options_.connection_name.empty() ? 1 : 2;
    properties.entries = props;

    const amqp_rpc_reply_t r = amqp_login_with_properties(
        state_.get(), url.vhost.c_str(), 0, static_cast<int>(options_.frame_max),
        static_cast<int>(options_.heartbeat_seconds), &properties, AMQP_SASL_METHOD_PLAIN,
        url.user.c_str(), url.password.c_str());
    switch (r.reply_type) {
      case AMQP_RESPONSE_NORMAL:
        return;
      case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
          const auto* m = static_cast<const amqp_connection_close_t*>(r.reply.decoded);
          const std::uint16_t code = m->reply_code;
          const std::string text = to_string(m->reply_text);
          send_connection_close_ok();
          socket_alive_ = false;
          // 403 ACCESS_REFUSED: bad credentials; 530 NOT_ALLOWED: no access to the vhost.
          if (code == AMQP_ACCESS_REFUSED || code == AMQP_NOT_ALLOWED) {
            throw AuthError(
                "amqp: login to " + masked_url_ + " refused: " + std::to_string(code) + " " + text,
                code);
          }
          throw ConnectionError("amqp: broker closed the connection during login to " +
                                    masked_url_ + ": " + std::to_string(code) + " " + text,
                                code);
        }
        socket_alive_ = false;
        throw ConnectionError("amqp: unexpected reply during login to " + masked_url_);
      case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        socket_alive_ = false;
        // A broker that does not honour authentication_failure_close drops the socket on bad
        // credentials; that is the only way it can say so.
        if (r.library_error == AMQP_STATUS_CONNECTION_CLOSED) {
          throw AuthError("amqp: broker closed the connection during login to " + masked_url_ +
                          " (credentials or vhost refused)");
        }
        throw ConnectionError("amqp: login to " + masked_url_ +
                              " failed: " + status_text(r.library_error));
      case AMQP_RESPONSE_NONE:
        break;
    }
    socket_alive_ = false;
    throw ConnectionError("amqp: login to " + masked_url_ + " failed (no reply)");
  }

  void ensure_usable() const {
    if (!usable_) {
      throw ConnectionError("amqp: connection to " + masked_url_ +
                            " is unusable after an earlier error; reconnect");
    }
  }

  bool has_buffered_confirms() const noexcept {
    return !confirms_.acked.empty() || !confirms_.nacked.empty() || !confirms_.returned.empty();
  }

  // Classifies the reply of the last RPC; throws on anything but success.
  void check_rpc(const char* what) {
    const amqp_rpc_reply_t r = amqp_get_rpc_reply(state_.get());
    switch (r.reply_type) {
      case AMQP_RESPONSE_NORMAL:
        return;
      case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
          on_channel_close(*static_cast<const amqp_channel_close_t*>(r.reply.decoded));
        }
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
          on_connection_close(*static_cast<const amqp_connection_close_t*>(r.reply.decoded));
        }
        fail_connection(what, AMQP_STATUS_UNEXPECTED_STATE);
      case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        fail_connection(what, r.library_error);
      case AMQP_RESPONSE_NONE:
        break;
    }
    fail_connection(what, AMQP_STATUS_UNEXPECTED_STATE);
  }

  [[noreturn]] void on_channel_close(const amqp_channel_close_t& m) {
    const std::uint16_t code = m.reply_code;
    const std::string text = to_string(m.reply_text);
    amqp_channel_close_ok_t ok{};
    if (amqp_send_method(state_.get(), kChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) !=
        AMQP_STATUS_OK) {
      socket_alive_ = false;
    }
    usable_ = false;  // the socket is fine: the destructor still closes the connection politely
    spdlog::warn("amqp: broker closed the channel on {}: {} {}", masked_url_, code, text);
    throw ChannelError(code, text);
  }

  [[noreturn]] void on_connection_close(const amqp_connection_close_t& m) {
    const std::uint16_t code = m.reply_code;
    const std::string text = to_string(m.reply_text);
    send_connection_close_ok();
    usable_ = false;
    socket_alive_ = false;
    spdlog::warn("amqp: broker closed the connection {}: {} {}", masked_url_, code, text);
    lost();
    throw ConnectionError(
        "amqp: broker closed the connection: " + std::to_string(code) + " " + text, code);
  }

  void send_connection_close_ok() noexcept {
    amqp_connection_close_ok_t ok{};
    (void)amqp_send_method(state_.get(), 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
  }

  [[noreturn]] void fail_connection(std::string_view what, int status) {
    usable_ = false;
    socket_alive_ = false;  // the protocol state is unknown: do not attempt a polite close
    lost();
    throw ConnectionError("amqp: " + std::string(what) + " on " + masked_url_ +
                          " failed: " + status_text(status));
  }

  [[noreturn]] void fail_protocol(std::string_view what) {
    usable_ = false;
    socket_alive_ = false;
    lost();
    throw ConnectionError("amqp: protocol error on " + masked_url_ + ": " + std::string(what));
  }

  // Reads one frame; false when the deadline passed first. Heartbeats are sent and checked by
  // rabbitmq-c inside this call.
  bool read_frame(Clock::time_point deadline, amqp_frame_t& frame) {
    // Frees the memory of frames already copied out (no-op while rabbitmq-c holds queued ones).
    amqp_maybe_release_buffers(state_.get());
    timeval tv = remaining(deadline);
    const int status = amqp_simple_wait_frame_noblock(state_.get(), &frame, &tv);
    if (status == AMQP_STATUS_TIMEOUT) return false;
    if (status != AMQP_STATUS_OK) fail_connection("reading a frame", status);
    return true;
  }

  // Reads and dispatches one frame; false when the deadline passed with nothing to read.
  bool pump_one(Clock::time_point deadline) {
    amqp_frame_t frame;
    if (!read_frame(deadline, frame)) return false;
    if (frame.frame_type == AMQP_FRAME_HEARTBEAT) return true;
    if (frame.frame_type != AMQP_FRAME_METHOD) {
      fail_protocol("content frame without a preceding basic.deliver/basic.return");
    }
    const amqp_method_t& method = frame.payload.method;
    switch (method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        const auto* m = static_cast<const amqp_basic_ack_t*>(method.decoded);
        on_confirm(m->delivery_tag, m->multiple != 0, confirms_.acked);
        break;
      }
      case AMQP_BASIC_NACK_METHOD: {
        const auto* m = static_cast<const amqp_basic_nack_t*>(method.decoded);
        on_confirm(m->delivery_tag, m->multiple != 0, confirms_.nacked);
        break;
      }
      case AMQP_BASIC_RETURN_METHOD: {
        const auto* m = static_cast<const amqp_basic_return_t*>(method.decoded);
        Returned r;
        r.reply_code = m->reply_code;
        r.reply_text = to_string(m->reply_text);
        r.exchange = to_string(m->exchange);
        r.routing_key = to_string(m->routing_key);
        r.message_id = read_content(nullptr).message_id;
        confirms_.returned.push_back(std::move(r));
        break;
      }
      case AMQP_BASIC_DELIVER_METHOD: {
        const auto* m = static_cast<const amqp_basic_deliver_t*>(method.decoded);
        Delivery d;
        d.delivery_tag = m->delivery_tag;
        d.redelivered = m->redelivered != 0;
        d.exchange = to_string(m->exchange);
        d.routing_key = to_string(m->routing_key);
        d.consumer_tag = to_string(m->consumer_tag);
        ReceivedProperties p = read_content(&d.body);
        d.message_id = std::move(p.message_id);
        d.type = std::move(p.type);
        d.content_type = std::move(p.content_type);
        d.headers = std::move(p.headers);
        d.timestamp = p.timestamp;
        deliveries_.push_back(std::move(d));
        break;
      }
      case AMQP_CHANNEL_CLOSE_METHOD:
        on_channel_close(*static_cast<const amqp_channel_close_t*>(method.decoded));
      case AMQP_CONNECTION_CLOSE_METHOD:
        on_connection_close(*static_cast<const amqp_connection_close_t*>(method.decoded));
      case AMQP_BASIC_CANCEL_METHOD: {
        // Sent with nowait: no reply expected. The socket is fine; close politely later.
        const auto* m = static_cast<const amqp_basic_cancel_t*>(method.decoded);
        const std::string tag = to_string(m->consumer_tag);
        usable_ = false;
        spdlog::warn("amqp: broker cancelled consumer '{}' on {}", tag, masked_url_);
        throw ConsumerCancelled(tag);
      }
      case AMQP_CONNECTION_BLOCKED_METHOD: {
        const auto* m = static_cast<const amqp_connection_blocked_t*>(method.decoded);
        blocked_ = true;
        spdlog::warn("amqp: broker blocks publishing on {}: {}", masked_url_, to_string(m->reason));
        break;
      }
      case AMQP_CONNECTION_UNBLOCKED_METHOD:
        blocked_ = false;
        spdlog::info("amqp: broker unblocked publishing on {}", masked_url_);
        break;
      default:
        spdlog::debug("amqp: ignoring unexpected method 0x{:08x} on channel {}", method.id,
                      frame.channel);
        break;
    }
    return true;
  }

  // Reads the content header and body frames that follow basic.deliver/basic.return. The
  // message has started to arrive, so the rest gets its own io_timeout deadline rather than the
  // caller's (possibly zero) one. With body == nullptr the body is read and discarded.
  ReceivedProperties read_content(std::string* body) {
    const auto deadline = Clock::now() + options_.io_timeout;
    amqp_frame_t frame;
    if (!read_frame(deadline, frame))
      fail_connection("reading a content header", AMQP_STATUS_TIMEOUT);
    if (frame.frame_type != AMQP_FRAME_HEADER) {
      if (frame.frame_type == AMQP_FRAME_METHOD &&
          frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
        on_connection_close(
            *static_cast<const amqp_connection_close_t*>(frame.payload.method.decoded));
      }
      fail_protocol("expected a content header frame");
    }
    ReceivedProperties props = copy_properties(
        *static_cast<const amqp_basic_properties_t*>(frame.payload.properties.decoded));
    const std::uint64_t size = frame.payload.properties.body_size;
    if (body != nullptr) body->reserve(static_cast<std::size_t>(std::min(size, kMaxBodyReserve)));
    std::uint64_t received = 0;
    while (received < size) {
      if (!read_frame(deadline, frame))
        fail_connection("reading a message body", AMQP_STATUS_TIMEOUT);
      if (frame.frame_type != AMQP_FRAME_BODY) {
        if (frame.frame_type == AMQP_FRAME_METHOD &&
            frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
          on_connection_close(
              *static_cast<const amqp_connection_close_t*>(frame.payload.method.decoded));
        }
        fail_protocol("expected a content body frame");
      }
      const amqp_bytes_t& fragment = frame.payload.body_fragment;
      if (body != nullptr && fragment.len > 0) {
        body->append(static_cast<const char*>(fragment.bytes), fragment.len);
      }
      received += fragment.len;
    }
    if (received != size) fail_protocol("message body longer than announced");
    return props;
  }

  // Moves confirmed sequence numbers from unconfirmed_ to `out`, expanding multiple=true.
  void on_confirm(std::uint64_t tag, bool multiple, std::vector<std::uint64_t>& out) {
    if (multiple) {
      // Tag 0 with multiple means "everything outstanding".
      const auto end = tag == 0 ? unconfirmed_.end() : unconfirmed_.upper_bound(tag);
      for (auto it = unconfirmed_.begin(); it != end; ++it) out.push_back(*it);
      unconfirmed_.erase(unconfirmed_.begin(), end);
    } else if (unconfirmed_.erase(tag) == 1) {
      out.push_back(tag);
    } else {
      spdlog::debug("amqp: confirm for unknown sequence number {}", tag);
    }
  }

  // Reads whatever has already arrived, without waiting.
  void drain_ready() {
    const auto now = Clock::now();
    while (pump_one(now)) {
    }
  }

  void wait_until_unblocked() {
    const auto deadline = Clock::now() + options_.io_timeout;
    while (blocked_ && pump_one(deadline)) {
    }
    if (blocked_) {
      // Not fatal for the socket, but the caller must back off: report it as transient.
      usable_ = false;
      throw ConnectionError("amqp: broker has blocked publishing on " + masked_url_ +
                            " (resource alarm) for longer than io_timeout");
    }
  }

  ConnectionOptions options_;
  std::string masked_url_;      // the node's URL, password masked
  std::size_t node_index_ = 0;  // position of the node in the URL list
  std::size_t node_count_ = 1;  // length of the URL list
  std::string counted_node_;    // host:port counted in Failover while open; empty otherwise
  StatePtr state_;
  bool usable_ = false;        // false after any error: the caller must reconnect
  bool socket_alive_ = false;  // whether a polite connection.close may still be attempted
  bool blocked_ = false;       // connection.blocked received and not yet unblocked
  bool confirms_enabled_ = false;
  std::uint64_t next_publish_seq_ = 1;
  unsigned publishes_since_drain_ = 0;
  std::set<std::uint64_t> unconfirmed_;  // published, neither acked nor nacked yet
  ConfirmBatch confirms_;                // confirmed since the last wait_confirms()
  std::deque<Delivery> deliveries_;      // received, not yet handed out
};

Connection::Connection(ConnectionOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
Connection::~Connection() = default;
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;

Connection::Impl& Connection::impl() {
  if (!impl_) throw std::logic_error("amqp: use of a moved-from Connection");
  return *impl_;
}

void Connection::declare_exchange(const std::string& name, const std::string& type, bool durable,
                                  const Table& args) {
  impl().declare_exchange(name, type, durable, args);
}
void Connection::delete_exchange(const std::string& name) { impl().delete_exchange(name); }
void Connection::declare_queue(const std::string& name, const QueueOptions& options) {
  impl().declare_queue(name, options);
}
std::uint32_t Connection::queue_message_count(const std::string& name) {
  return impl().queue_message_count(name);
}
void Connection::bind_queue(const std::string& queue, const std::string& exchange,
                            const std::string& routing_key, const Table& args) {
  impl().bind_queue(queue, exchange, routing_key, args);
}
void Connection::delete_queue(const std::string& name) { impl().delete_queue(name); }
void Connection::purge_queue(const std::string& name) { impl().purge_queue(name); }
void Connection::enable_confirms() { impl().enable_confirms(); }
std::uint64_t Connection::publish(const Message& message, bool mandatory) {
  return impl().publish(message, mandatory);
}
ConfirmBatch Connection::wait_confirms(std::uint64_t up_to, std::chrono::milliseconds timeout) {
  return impl().wait_confirms(up_to, timeout);
}
void Connection::set_prefetch(std::uint16_t count) { impl().set_prefetch(count); }
std::string Connection::consume(const std::string& queue, const std::string& consumer_tag,
                                bool exclusive) {
  return impl().consume(queue, consumer_tag, exclusive);
}
std::optional<Delivery> Connection::next_delivery(std::chrono::milliseconds timeout) {
  return impl().next_delivery(timeout);
}
void Connection::keep_alive() { impl().keep_alive(); }
void Connection::ack(std::uint64_t delivery_tag, bool multiple) {
  impl().ack(delivery_tag, multiple);
}
void Connection::nack(std::uint64_t delivery_tag, bool multiple, bool requeue) {
  impl().nack(delivery_tag, multiple, requeue);
}
void Connection::cancel(const std::string& consumer_tag) { impl().cancel(consumer_tag); }
bool Connection::is_open() const { return impl_ != nullptr && impl_->is_open(); }
const std::string& Connection::node() const {
  if (!impl_) throw std::logic_error("amqp: use of a moved-from Connection");
  return impl_->node();
}
std::size_t Connection::node_index() const { return impl_ ? impl_->node_index() : 0; }
std::size_t Connection::node_count() const { return impl_ ? impl_->node_count() : 0; }

}  // namespace oss::amqp
