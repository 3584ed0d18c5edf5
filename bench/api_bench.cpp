// api_bench: the operators' list endpoints at 1,000,000 orders (docs/performance.md, "## Keyset
// pagination at 1M orders"). Issue #6 asks for keyset pagination "that stays fast at 1M orders";
// this measures it through the real service over HTTP:
//
//   api_bench --pg-base postgresql://u:pw@127.0.0.1:PORT --amqp amqp://u:p@127.0.0.1:PORT/%2f
//             --bin-dir build/bin [--orders 1000000] [--page 1000] [--lookups 500] [--quick]
//             [--markdown-out FILE] [--keep]
//
//   1. a fresh service database, migrated by `order-status-service migrate`, filled with
//      `--orders` orders in bulk SQL: statuses spread like a live plant (most in manufacturing,
//      shipped or delivered), status clocks spread over 40 days, SLA due times from the shipped
//      workflow, so that a realistic share is past its SLA ("stuck");
//   2. the real `order-status-service run` on that database;
//   3. for each filter an operator uses, the WHOLE result is walked page by page through
//      GET /v1/orders (following next_cursor), and every page's latency is recorded: if
//      pagination were OFFSET-based or missed its index, the last pages would be far slower than
//      the first; keyset pagination keeps them flat (first, median, p99 and last page reported);
//   4. GET /v1/orders/{id} for random ids, against the baseline of the same primary-key lookup
//      straight through libpqxx in the same run (the HTTP + JSON + service overhead as a ratio).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bench_support.hpp"

namespace {

using namespace bench;
using namespace std::chrono_literals;

struct Options : CommonOptions {
  std::string bin_dir;
  std::string log = "/tmp/api_bench.log";
  std::int64_t orders = 1'000'000;
  int page = 1000;
  int lookups = 500;
  std::string db;
};

[[noreturn]] void usage(const std::string& problem) {
  usage_exit("api_bench", problem,
             "api_bench --pg-base postgresql://user:pw@host:port --amqp amqp://u:p@host:port/%2f --bin-dir build/bin "
             "[--orders N] [--page N] [--lookups N] [--quick] [--markdown-out FILE] [--servers-dir DIR] [--log FILE] "
             "[--keep]");
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool orders_set = false;
  parse_flags(argc, argv, o, usage, [&](const std::string& f, const std::function<std::string()>& value) {
    if (f == "--bin-dir") o.bin_dir = value();
    else if (f == "--log") o.log = value();
    else if (f == "--page") o.page = std::stoi(value());
    else if (f == "--lookups") o.lookups = std::stoi(value());
    else if (f == "--orders") {
      o.orders = std::stoll(value());
      orders_set = true;
    } else {
      return false;
    }
    return true;
  });
  if (o.pg_base.empty() || o.amqp.empty() || o.bin_dir.empty()) usage("--pg-base, --amqp and --bin-dir are required");
  if (o.orders < 1000 || o.page < 1 || o.page > 1000 || o.lookups < 1) usage("--orders >= 1000, --page 1..1000, --lookups >= 1");
  finish_common(o);
  if (o.quick && !orders_set) o.orders = 50'000;
  o.db = "api_bench_" + std::to_string(getpid());
  return o;
}

/// RFC 3986 percent-encoding of a query value (cursors are base64: '+', '/', '=').
std::string query_escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// Fills oss.orders in one statement. Status by i (a fixed, plant-like mix); the status clock
/// started up to 40 days before now; sla_due_at = entered + the shipped workflow's SLA for the
/// status (none for terminal statuses; FROZEN has none either).
void fill(const std::string& url, std::int64_t orders) {
  pqxx::connection c(url);
  pqxx::work tx(c);
  tx.exec_params(
      "WITH s AS ("
      "  SELECT i, CASE WHEN i % 100 < 4 THEN 'SUBMITTED' WHEN i % 100 < 9 THEN 'PRICE_CALCULATED' "
      "                 WHEN i % 100 < 17 THEN 'PRICE_CONFIRMED' WHEN i % 100 < 47 THEN 'MANUFACTURING_STARTED' "
      "                 WHEN i % 100 < 67 THEN 'SHIPPED' WHEN i % 100 < 93 THEN 'DELIVERED' "
      "                 WHEN i % 100 < 98 THEN 'CANCELLED' ELSE 'FROZEN' END AS status, "
      "         now() - ((i * 7919) % 3456000) * interval '1 second' AS entered "
      "  FROM generate_series(1, $1::bigint) i) "
      "INSERT INTO oss.orders (order_id, status, status_entered_at, sla_due_at, version, updated_at) "
      "SELECT 'ORD-' || lpad(i::text, 9, '0'), status, entered, "
      "       entered + CASE status WHEN 'SUBMITTED' THEN interval '1 hour' "
      "                             WHEN 'PRICE_CALCULATED' THEN interval '2 days' "
      "                             WHEN 'PRICE_CONFIRMED' THEN interval '2 days' "
      "                             WHEN 'MANUFACTURING_STARTED' THEN interval '21 days' "
      "                             WHEN 'SHIPPED' THEN interval '10 days' END, "
      "       1 + i % 5, entered "
      "FROM s",
      std::to_string(orders));
  tx.commit();
  pqxx::nontransaction n(c);
  n.exec("VACUUM ANALYZE oss.orders");
}

struct Walk {
  Walk(std::string n, std::string q, std::string sql) : name(std::move(n)), query(std::move(q)), count_sql(std::move(sql)) {}
  std::string name, query;
  std::string count_sql;      // counts the rows the filter matches
  std::int64_t expected = 0;  // that count before the walk
  std::int64_t expected_after = 0;  // and after: "stuck" grows while the clock runs
  std::int64_t rows = 0;
  std::vector<double> page_ms;
};

/// Walks every page of GET /v1/orders?QUERY&limit=PAGE; checks that the pages together return
/// exactly the rows the filter matches, each once.
void walk(int port, int page, Walk& w, const std::function<std::int64_t()>& count_now) {
  std::optional<std::string> cursor;
  std::unordered_set<std::string> seen;
  for (;;) {
    std::string path = "/v1/orders?limit=" + std::to_string(page) + (w.query.empty() ? "" : "&" + w.query);
    if (cursor) path += "&cursor=" + query_escape(*cursor);
    const auto t0 = Clock::now();
    const auto r = http_get(port, path);
    const auto t1 = Clock::now();
    if (!r) throw std::runtime_error(w.name + ": the service did not answer " + path);
    if (r->first != 200) throw std::runtime_error(w.name + ": HTTP " + std::to_string(r->first) + " for " + path + ": " + r->second);
    w.page_ms.push_back(ms_between(t0, t1));
    const auto body = nlohmann::json::parse(r->second);
    for (const auto& o : body.at("orders")) {
      if (!seen.insert(o.at("order_id").get<std::string>()).second)
        throw std::runtime_error(w.name + ": order " + o.at("order_id").get<std::string>() + " came twice");
      ++w.rows;
    }
    if (body.at("next_cursor").is_null()) break;
    cursor = body.at("next_cursor").get<std::string>();
  }
  w.expected_after = count_now();
  if (w.rows < w.expected || w.rows > w.expected_after)
    throw std::runtime_error(w.name + ": walked " + std::to_string(w.rows) + " rows, the filter matches " +
                             std::to_string(w.expected) + " (before) to " + std::to_string(w.expected_after) + " (after)");
}

int run(const Options& o) {
  std::string machine, cpu_model, date, pg_version;
  describe_run(o, machine, cpu_model, date, pg_version);
  recreate_db(o, o.db);
  const std::string url = db_url(o, o.db);
  run_to_completion({o.bin_dir + "/order-status-service", "migrate", "--db", url}, o.log);
  say("filling " + std::to_string(o.orders) + " orders");
  const auto f0 = Clock::now();
  fill(url, o.orders);
  const double fill_s = Secs(Clock::now() - f0).count();
  pqxx::connection c(url);
  const std::int64_t table_mb = scalar(c, "SELECT pg_total_relation_size('oss.orders') / 1048576");

  std::vector<Walk> walks = {
      {"all orders", "", "SELECT count(*) FROM oss.orders"},
      {"status=MANUFACTURING_STARTED", "status=MANUFACTURING_STARTED",
       "SELECT count(*) FROM oss.orders WHERE status = 'MANUFACTURING_STARTED'"},
      {"stuck=true", "stuck=true", "SELECT count(*) FROM oss.orders WHERE sla_due_at <= now()"},
      {"status=SUBMITTED&stuck=true", "status=SUBMITTED&stuck=true",
       "SELECT count(*) FROM oss.orders WHERE status = 'SUBMITTED' AND sla_due_at <= now()"},
      {"status=SHIPPED&older_than=7d", "status=SHIPPED&older_than=7d",
       "SELECT count(*) FROM oss.orders WHERE status = 'SHIPPED' AND status_entered_at <= now() - interval '7 days'"},
  };

  const int port = free_port();
  pid_t svc = spawn({o.bin_dir + "/order-status-service", "run", "--db", url, "--amqp", o.amqp, "--http",
                     "127.0.0.1:" + std::to_string(port), "--exchange", "api_bench." + o.db, "--queue",
                     "api_bench.events." + o.db, "--dlq", "api_bench.dlq." + o.db, "--notifications-exchange",
                     "api_bench.notifications." + o.db, "--notifications-tail", "api_bench.notifications-tail." + o.db},
                    o.log);
  wait_ready(svc, port, 60s, "order-status-service");

  for (auto& w : walks) {
    w.expected = scalar(c, w.count_sql);
    say("walking " + w.name + " (" + std::to_string(w.expected) + " rows)");
    const auto t0 = Clock::now();
    walk(port, o.page, w, [&] { return scalar(c, w.count_sql); });
    say("  " + std::to_string(w.page_ms.size()) + " pages in " + fmt_num(Secs(Clock::now() - t0).count(), 1) + " s");
  }

  // Single-order lookups: through the API, and the same primary-key read straight from libpqxx.
  std::mt19937_64 rng(42);  // NOLINT(cert-msc32-c,cert-msc51-cpp): fixed seed, reproducible runs
  std::uniform_int_distribution<std::int64_t> pick(1, o.orders);
  auto id_of = [](std::int64_t i) {
    std::string n = std::to_string(i);
    return "ORD-" + std::string(9 - n.size(), '0') + n;
  };
  std::vector<double> api_ms, raw_ms;
  for (int i = 0; i < o.lookups; ++i) {
    const std::string id = id_of(pick(rng));
    const auto t0 = Clock::now();
    const auto r = http_get(port, "/v1/orders/" + id);
    api_ms.push_back(ms_between(t0, Clock::now()));
    if (!r || r->first != 200) throw std::runtime_error("GET /v1/orders/" + id + " failed");
  }
  c.prepare("by_id", "SELECT order_id, status, status_entered_at, sla_due_at, version, updated_at FROM oss.orders WHERE order_id = $1");
  for (int i = 0; i < o.lookups; ++i) {
    const std::string id = id_of(pick(rng));
    const auto t0 = Clock::now();
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec_prepared("by_id", id);
    tx.commit();
    raw_ms.push_back(ms_between(t0, Clock::now()));
    if (rows.size() != 1) throw std::runtime_error("raw lookup of " + id + " found nothing");
  }
  stop_child(svc, "order-status-service");

  std::ostringstream md;
  md << "### Keyset pagination at " << fmt_num(static_cast<double>(o.orders)) << " orders (" << date << ")\n\n"
     << machine << "; " << cpu_model << "; " << pg_version << ". Filled in " << fmt_num(fill_s, 1)
     << " s; oss.orders with its indexes: " << table_mb << " MiB. Each filter's whole result walked through "
     << "`GET /v1/orders` in pages of " << o.page << " (one new HTTP connection per page), every row checked "
     << "to come exactly once.\n\n"
     << "| filter | rows | pages | first page ms | median page ms | p99 page ms | last page ms | last/first |\n"
     << "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  for (const auto& w : walks) {
    const double first = w.page_ms.front(), last = w.page_ms.back();
    md << "| `" << (w.query.empty() ? "(none)" : w.query) << "` | " << fmt_num(static_cast<double>(w.rows)) << " | "
       << w.page_ms.size() << " | " << fmt_num(first, 1) << " | " << fmt_num(quantile(w.page_ms, 0.5), 1) << " | "
       << fmt_num(quantile(w.page_ms, 0.99), 1) << " | " << fmt_num(last, 1) << " | " << fmt_num(last / first, 2)
       << " |\n";
  }
  const double api50 = quantile(api_ms, 0.5), api99 = quantile(api_ms, 0.99);
  const double raw50 = quantile(raw_ms, 0.5), raw99 = quantile(raw_ms, 0.99);
  md << "\n| lookup (" << o.lookups << " random ids) | p50 ms | p99 ms |\n| --- | ---: | ---: |\n"
     << "| `GET /v1/orders/{id}` (new connection each) | " << fmt_num(api50, 2) << " | " << fmt_num(api99, 2) << " |\n"
     << "| baseline: the same primary-key SELECT through libpqxx | " << fmt_num(raw50, 2) << " | "
     << fmt_num(raw99, 2) << " |\n"
     << "| ratio API / baseline | " << fmt_num(api50 / raw50, 1) << "x | " << fmt_num(api99 / raw99, 1) << "x |\n";
  emit_report(md.str(), o.markdown_out);
  if (!o.keep) drop_db(o, o.db);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  set_program("api_bench");
  return guarded_main("api_bench", [&] { return run(parse_args(argc, argv)); });
}
