#include "amqp_publisher.hpp"

#include <fmt/format.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace oss::relay {

AmqpPublisher::AmqpPublisher(AmqpPublisherOptions options) : options_(std::move(options)) {}

void AmqpPublisher::connect() {
  conn_.reset();
  amqp::Connection c(options_.connection);
  c.declare_exchange(options_.exchange, "topic", true);
  c.enable_confirms();
  conn_.emplace(std::move(c));
}

PublishOutcome AmqpPublisher::publish(const std::vector<OutboxRow>& rows) {
  PublishOutcome out;
  if (rows.empty()) return out;
  try {
    if (!conn_ || !conn_->is_open()) connect();
  } catch (const amqp::Error& e) {
    conn_.reset();
    out.connection_lost = true;
    out.error = e.what();
    return out;
  }
  std::map<std::uint64_t, std::int64_t> by_tag;
  std::map<std::string, std::int64_t> by_id;
  std::uint64_t last_tag = 0;
  try {
    for (const auto& row : rows) {
      amqp::Message m;
      try {
        m = to_message(row, options_.exchange);
      } catch (const nlohmann::json::exception& e) {
        out.failed.push_back({row.position, std::string("cannot encode envelope: ") + e.what(), "encode"});
        continue;
      }
      last_tag = conn_->publish(m, /*mandatory=*/true);
      by_tag[last_tag] = row.position;
      by_id[row.event_id] = row.position;
    }
    if (last_tag == 0) return out;
    const auto deadline = std::chrono::steady_clock::now() + options_.confirm_timeout;
    std::set<std::uint64_t> settled;
    std::set<std::int64_t> refused;
    while (settled.size() < by_tag.size()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      auto batch = conn_->wait_confirms(last_tag, left);
      for (const auto& r : batch.returned) {
        if (auto it = by_id.find(r.message_id); it != by_id.end()) {
          refused.insert(it->second);
          out.failed.push_back({it->second, fmt::format("unroutable: broker returned it ({} {}) for exchange '{}' routing key '{}'",
                                                        r.reply_code, r.reply_text, r.exchange, r.routing_key), "returned"});
        }
      }
      for (auto tag : batch.nacked) {
        if (!settled.insert(tag).second) continue;
        auto it = by_tag.find(tag);
        if (it == by_tag.end()) continue;
        if (refused.insert(it->second).second)
          out.failed.push_back({it->second, "nacked by the broker", "nacked"});
      }
      for (auto tag : batch.acked) {
        if (!settled.insert(tag).second) continue;
        auto it = by_tag.find(tag);
        if (it == by_tag.end()) continue;
        if (!refused.count(it->second)) out.confirmed.push_back(it->second);
      }
    }
    if (settled.size() < by_tag.size()) {
      out.connection_lost = true;
      out.error = fmt::format("{} of {} confirms did not arrive within {} ms", by_tag.size() - settled.size(),
                              by_tag.size(), options_.confirm_timeout.count());
      conn_.reset();
    }
  } catch (const amqp::ChannelError& e) {
    conn_.reset();
    // Whatever was confirmed before the channel closed is lost to us (confirms were not read):
    // everything in the batch is retried; duplicates of confirmed ones are possible and counted.
    out.confirmed.clear();
    out.error = e.what();
    if (rows.size() == 1) {
      out.failed = {{rows.front().position, std::string("broker refused the message: ") + e.what(), "refused"}};
    } else {
      out.failed.clear();
      out.isolate = true;
    }
  } catch (const amqp::Error& e) {
    conn_.reset();
    out.confirmed.clear();
    out.failed.clear();
    out.connection_lost = true;
    out.error = e.what();
  }
  return out;
}

}  // namespace oss::relay
