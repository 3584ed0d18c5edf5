#include "amqp_publisher.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "failure_policy.hpp"
#include "oss/core/logging.hpp"

namespace oss::relay {

AmqpPublisher::AmqpPublisher(AmqpPublisherOptions options) : options_(std::move(options)) {}

void AmqpPublisher::connect() {
  conn_.reset();
  amqp::Connection c(options_.connection);
  c.declare_exchange(options_.exchange, "topic", true);
  c.enable_confirms();
  conn_.emplace(std::move(c));
  acked_.clear();
  nacked_.clear();
  returned_.clear();
}

void AmqpPublisher::reset() {
  conn_.reset();
  in_flight_.clear();
  broken_ = false;
  row_refused_ = false;
}

void AmqpPublisher::keep_alive() {
  // Only with nothing in flight: frames read here are then none of a batch's confirms.
  if (!conn_ || !conn_->is_open() || !in_flight_.empty()) return;
  try {
    conn_->keep_alive();
  } catch (const amqp::Error& e) {
    // Lost while idle (broker restarted, say): reconnect with the next batch, quietly.
    core::logger("relay")->info("msg=\"idle broker connection lost; reconnecting with the next batch\" error={}",
                                core::q(e.what()));
    conn_.reset();
  }
}

void AmqpPublisher::fail_all(const std::string& error, bool row_refused, const char* fault) {
  conn_.reset();
  if (!broken_) broken_fault_ = fault;
  broken_ = true;
  broken_error_ = error;
  row_refused_ = row_refused_ || row_refused;
}

void AmqpPublisher::fail_on(const amqp::Error& e) {
  // Only a channel closed over the message itself (406) may be a row's fault; any other
  // channel close (541 INTERNAL_ERROR while the broker recovers, 404, 403, 504 ...) and every
  // connection error is the broker's, retried without charging a row (failure_policy.hpp).
  if (const auto* ce = dynamic_cast<const amqp::ChannelError*>(&e))
    fail_all(e.what(), row_specific_channel_close(ce->reply_code), "channel");
  else
    fail_all(e.what(), false, "connection");
}

std::uint64_t AmqpPublisher::send(const std::vector<OutboxRow>& rows) {
  InFlight batch;
  for (const auto& r : rows) batch.positions.push_back(r.position);
  if (!broken_ && (!conn_ || !conn_->is_open())) {
    try {
      connect();
    } catch (const amqp::ChannelError& e) {
      // Declaring the exchange or confirm.select failed before any row went out (e.g. 541
      // while the broker recovers): never a row's fault.
      fail_all(e.what(), false, "channel");
    } catch (const amqp::Error& e) {
      fail_all(e.what(), false, "connection");
    }
  }
  if (!broken_) {
    try {
      for (const auto& row : rows) {
        amqp::Message m;
        try {
          m = to_message(row, options_.exchange);
        } catch (const nlohmann::json::exception& e) {
          batch.encode_failures.push_back({row.position, std::string("cannot encode envelope: ") + e.what(), "encode"});
          continue;
        }
        batch.last_tag = conn_->publish(m, /*mandatory=*/true);
        batch.by_tag[batch.last_tag] = row.position;
        batch.by_id[row.event_id] = row.position;
      }
    } catch (const amqp::Error& e) {
      fail_on(e);
    }
  }
  in_flight_.push_back(std::move(batch));
  return in_flight_.size();
}

PublishOutcome AmqpPublisher::settle() {
  PublishOutcome out;
  if (in_flight_.empty()) return out;
  InFlight batch = std::move(in_flight_.front());
  in_flight_.pop_front();
  out.failed = batch.encode_failures;
  auto finish_broken = [&] {
    // Whatever the broker confirmed before the break is unknown to us: all of it is retried
    // (possible duplicates, counted by the caller).
    out.failed = batch.encode_failures;
    out.error = broken_error_;
    if (row_refused_ && batch.alone && batch.positions.size() == 1 && batch.encode_failures.empty()) {
      // A single row sent alone: the broker refused this very row.
      out.failed.push_back({batch.positions.front(), "broker refused the message: " + broken_error_, "refused"});
    } else if (row_refused_ && batch.positions.size() > batch.encode_failures.size()) {
      // The broker refused a message in flight: the caller re-publishes row by row so that
      // only the refused row is charged an attempt.
      out.isolate = true;
    } else {
      out.connection_lost = true;
      out.fault = broken_fault_;
    }
    if (in_flight_.empty()) {
      broken_ = false;
      row_refused_ = false;
    }
    return out;
  };
  if (broken_) return finish_broken();
  if (batch.by_tag.empty()) return out;

  const auto deadline = std::chrono::steady_clock::now() + options_.confirm_timeout;
  auto settled = [&] {
    return std::all_of(batch.by_tag.begin(), batch.by_tag.end(), [&](const auto& entry) {
      return acked_.contains(entry.first) || nacked_.contains(entry.first);
    });
  };
  try {
    while (!settled()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      auto c = conn_->wait_confirms(batch.last_tag, left);
      acked_.insert(c.acked.begin(), c.acked.end());
      nacked_.insert(c.nacked.begin(), c.nacked.end());
      for (auto& r : c.returned) returned_[r.message_id] = std::move(r);
    }
  } catch (const amqp::Error& e) {
    fail_on(e);
    return finish_broken();
  }
  if (!settled()) {
    fail_all(fmt::format("confirms did not arrive within {} ms", options_.confirm_timeout.count()), false,
             "confirm_timeout");
    return finish_broken();
  }
  std::set<std::int64_t> refused;
  for (const auto& [id, pos] : batch.by_id) {
    auto it = returned_.find(id);
    if (it == returned_.end()) continue;
    const auto& r = it->second;
    refused.insert(pos);
    out.failed.push_back({pos,
                          fmt::format("unroutable: broker returned it ({} {}) for exchange '{}' routing key '{}'",
                                      r.reply_code, r.reply_text, r.exchange, r.routing_key),
                          "returned"});
    returned_.erase(it);
  }
  for (const auto& [tag, pos] : batch.by_tag) {
    if (nacked_.erase(tag)) {
      // Not charged here: the relay's NackPolicy decides (failure_policy.hpp).
      if (refused.insert(pos).second) out.failed.push_back({pos, "nacked by the broker", "nacked", false});
      acked_.erase(tag);
      continue;
    }
    acked_.erase(tag);
    if (!refused.contains(pos)) out.confirmed.push_back(pos);
  }
  return out;
}

PublishOutcome AmqpPublisher::publish(const std::vector<OutboxRow>& rows) {
  const bool alone = in_flight_.empty();
  send(rows);
  in_flight_.back().alone = alone;
  // Settle everything sent before too (their outcomes are dropped: callers of publish() do not
  // mix it with send()), then this batch.
  while (in_flight_.size() > 1) settle();
  return settle();
}

}  // namespace oss::relay
