// demo-producer: realistic order traffic for the demo. It plays the two producer systems, a CRM
// and an MES, each with its own PostgreSQL database: every status change is one transaction that
// updates the producer's business table (demo_orders) and calls outbox.emit (the transactional
// outbox pattern). Some transactions are rolled back on purpose after the emit: those events
// never existed and must never show up downstream.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <fmt/format.h>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "oss/core/cli.hpp"
#include "oss/core/url.hpp"

namespace {

using namespace std::chrono_literals;
using oss::core::UsageError;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);
void on_signal(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // a second Ctrl-C stops at once
}

enum Source : std::size_t { kCrm = 0, kMes = 1 };
constexpr const char* kSourceName[] = {"crm", "mes"};

struct Step {
  Source source = kCrm;
  std::string status, reason, actor;
};

struct Config {
  std::string db[2], prefix;
  long orders = 0;
  double rate = 0;
  long concurrency = 1, rollback_percent = 0;
  std::uint64_t seed = 0;
};

struct Stats {
  std::atomic<long> committed[2]{}, rolled_back[2]{}, orders{}, delivered{}, cancelled{}, highest{};
};

long parse_long(const oss::core::FlagValues& f, const std::string& name, long min, long max) {
  const std::string& v = f.get(name);
  long out = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || ptr != v.data() + v.size() || out < min || out > max)
    throw UsageError(fmt::format("--{}: expected an integer in [{}, {}], got '{}'", name, min, max, v));
  return out;
}

/// One order's whole life, decided up front from (seed, order number) so runs are reproducible.
std::vector<Step> plan_order(std::uint64_t seed, long number) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(number));
  auto uniform = [&](long lo, long hi) { return std::uniform_int_distribution<long>(lo, hi)(rng); };
  auto pick = [&](std::initializer_list<const char*> l) {
    return std::string(*(l.begin() + uniform(0, static_cast<long>(l.size()) - 1)));
  };
  auto crm = [&](const char* status, std::string reason) {
    return Step{kCrm, status, std::move(reason), fmt::format("crm-user-{}", uniform(1, 40))};
  };
  auto mes = [&](const char* status, std::string reason) {
    return Step{kMes, status, std::move(reason), fmt::format("mes-line-{}", uniform(1, 6))};
  };
  std::vector<Step> s;
  s.push_back(crm("SUBMITTED", pick({"order placed in the web shop", "order entered by a sales representative",
                                     "reorder from the customer portal", "order received by EDI"})));
  s.push_back(mes("PRICE_CALCULATED", fmt::format("quote {}.{:02} EUR for {} items from the bill of materials",
                                                  uniform(120, 48000), uniform(0, 99), uniform(1, 40))));
  if (uniform(0, 99) < 10) {
    s.push_back(crm("FROZEN", "customer did not confirm the price in time"));
    if (uniform(0, 99) < 40) {
      s.push_back(crm("CANCELLED", "price never confirmed; order cancelled after the freeze"));
      return s;
    }
    s.push_back(crm("PRICE_CONFIRMED", "customer confirmed the price after a reminder"));
  } else {
    s.push_back(crm("PRICE_CONFIRMED", pick({"customer accepted the quote", "price confirmed by phone",
                                             "quote signed in the customer portal"})));
  }
  s.push_back(mes("MANUFACTURING_STARTED", fmt::format("materials released; production batch B{}", uniform(10000, 99999))));
  s.push_back(mes("SHIPPED", fmt::format("handed to {}, tracking {}", pick({"DHL", "DB Schenker", "UPS", "DSV"}),
                                         uniform(100000000, 999999999))));
  s.push_back(crm("DELIVERED", pick({"proof of delivery received", "delivery confirmed by the customer"})));
  if (uniform(0, 99) < 5) {  // cancelled by CRM at a random non-terminal step
    s.resize(static_cast<std::size_t>(uniform(1, static_cast<long>(s.size()) - 1)));
    s.push_back(crm("CANCELLED", pick({"customer withdrew the order", "credit check failed", "duplicate order"})));
  }
  return s;
}

/// Spreads transactions evenly over time: `rate` per second across all threads (0 = unlimited).
class Pacer {
 public:
  explicit Pacer(double rate)
      : interval_(rate > 0 ? std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate))
                           : Clock::duration::zero()) {}
  bool wait() {  // false when asked to stop
    Clock::time_point slot;
    {
      std::lock_guard lock(mu_);
      slot = std::max(Clock::now(), next_);
      next_ = slot + interval_;
    }
    while (!g_stop && Clock::now() < slot) std::this_thread::sleep_for(std::min<Clock::duration>(slot - Clock::now(), 100ms));
    return !g_stop;
  }

 private:
  std::mutex mu_;
  Clock::duration interval_;
  Clock::time_point next_ = Clock::now();
};

std::string trimmed(std::string s) {  // libpq messages end in newlines
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::replace_if(s.begin(), s.end(), [](char c) { return c == '\n' || c == '\t'; }, ' ');
  return s;
}

std::unique_ptr<pqxx::connection> connect(const std::string& url) {
  auto c = std::make_unique<pqxx::connection>(url);
  pqxx::nontransaction(*c).exec("SET application_name = 'demo-producer'");
  return c;
}

enum class Outcome { committed, rolled_back, stopped };

/// One status change: business-table upsert and outbox.emit in one transaction. When the
/// connection breaks it reconnects and asks the business table whether the commit went through.
Outcome run_step(std::unique_ptr<pqxx::connection>& conn, const std::string& url, const std::string& order_id,
                 const Step& step, bool roll_back, std::mt19937_64& rng) {
  const std::string payload = nlohmann::json{{"status", step.status}, {"reason", step.reason}, {"actor", step.actor}}.dump();
  const std::string headers = fmt::format(R"({{"traceparent":"00-{:016x}{:016x}-{:016x}-01"}})", rng(), rng(), rng());
  for (auto backoff = 500ms;; backoff = std::min(backoff * 2, 5000ms)) {
    try {
      if (!conn) {
        conn = connect(url);
        pqxx::work check{*conn};
        auto r = check.exec_params("SELECT status FROM demo_orders WHERE order_id = $1", order_id);
        if (!r.empty() && r[0][0].c_str() == step.status) return Outcome::committed;  // the lost commit went through
      }
      pqxx::work w{*conn};
      w.exec_params("INSERT INTO demo_orders (order_id, status, updated_at) VALUES ($1, $2, now()) "
                    "ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
                    order_id, step.status);
      w.exec_params("SELECT outbox.emit($1, 'order', $2, 'order.status_changed', $3::jsonb, $4::jsonb)",
                    kSourceName[step.source], order_id, payload, headers);
      if (roll_back) {
        w.abort();
        return Outcome::rolled_back;
      }
      w.commit();
      return Outcome::committed;
    } catch (const pqxx::broken_connection& e) {
      conn.reset();
      std::cerr << fmt::format("demo-producer: {} database connection lost ({}); retrying {} {} in {}ms\n",
                               kSourceName[step.source], trimmed(e.what()), order_id, step.status, backoff.count());
    } catch (const pqxx::in_doubt_error& e) {
      conn.reset();
      std::cerr << fmt::format("demo-producer: commit of {} {} in doubt ({}); checking after reconnect\n", order_id,
                               step.status, trimmed(e.what()));
    }
    for (auto until = Clock::now() + backoff; Clock::now() < until;) {
      if (g_stop) return Outcome::stopped;
      std::this_thread::sleep_for(50ms);
    }
  }
}

/// A worker keeps a small window of orders in flight and advances a random one per transaction,
/// so orders interleave while each order's steps stay strictly sequential.
void worker(const Config& cfg, std::size_t index, std::atomic<long>& next_number, long last_number, Pacer& pacer,
            Stats& stats) {
  struct Active {
    long number;
    std::string id;
    std::vector<Step> steps;
    std::size_t next = 0;
  };
  std::unique_ptr<pqxx::connection> conn[2] = {connect(cfg.db[kCrm]), connect(cfg.db[kMes])};
  std::mt19937_64 rng(cfg.seed + 1000003 * (index + 1));
  std::vector<Active> window;
  while (!g_stop) {
    while (window.size() < 8) {
      const long n = next_number.fetch_add(1);
      if (last_number > 0 && n > last_number) break;
      window.push_back({n, fmt::format("{}-{:06}", cfg.prefix, n), plan_order(cfg.seed, n)});
    }
    if (window.empty() || !pacer.wait()) break;
    const std::size_t k = std::uniform_int_distribution<std::size_t>(0, window.size() - 1)(rng);
    Active& o = window[k];
    const Step& step = o.steps[o.next];
    const bool roll_back = std::uniform_int_distribution<long>(0, 99)(rng) < cfg.rollback_percent;
    switch (run_step(conn[step.source], cfg.db[step.source], o.id, step, roll_back, rng)) {
      case Outcome::stopped: return;
      case Outcome::rolled_back: stats.rolled_back[step.source]++; break;
      case Outcome::committed:
        stats.committed[step.source]++;
        if (o.next == 0) {
          stats.orders++;
          for (long h = stats.highest; h < o.number && !stats.highest.compare_exchange_weak(h, o.number);) {
          }
        }
        if (++o.next == o.steps.size()) {
          (step.status == "DELIVERED" ? stats.delivered : stats.cancelled)++;
          window.erase(window.begin() + static_cast<std::ptrdiff_t>(k));
        }
        break;
    }
  }
}

std::string progress(const Stats& s, double seconds) {
  const long c = s.committed[kCrm] + s.committed[kMes], r = s.rolled_back[kCrm] + s.rolled_back[kMes];
  return fmt::format("orders {} ({} delivered, {} cancelled, {} in flight); events committed {} (crm {}, mes {}), "
                     "rolled back {} (crm {}, mes {}); {:.1f} events/s",
                     s.orders.load(), s.delivered.load(), s.cancelled.load(), s.orders - s.delivered - s.cancelled, c,
                     s.committed[kCrm].load(), s.committed[kMes].load(), r, s.rolled_back[kCrm].load(),
                     s.rolled_back[kMes].load(), seconds > 0 ? static_cast<double>(c + r) / seconds : 0.0);
}

int run(const std::vector<std::string>& args) {
  const std::vector<oss::core::FlagSpec> specs = {
      {"crm-db", "DEMO_CRM_DB_URL", "the CRM producer database (libpq URI)", std::nullopt, true},
      {"mes-db", "DEMO_MES_DB_URL", "the MES producer database (libpq URI)", std::nullopt, true},
      {"orders", "DEMO_ORDERS", "orders to walk through the workflow; 0 = until SIGTERM/SIGINT", "200"},
      {"rate", "DEMO_RATE", "transactions per second over all threads; 0 = unlimited", "50"},
      {"concurrency", "DEMO_CONCURRENCY", "worker threads, each with its own connections", "4"},
      {"rollback-percent", "DEMO_ROLLBACK_PERCENT", "transactions rolled back on purpose after the emit", "5"},
      {"seed", "DEMO_SEED", "random seed, for a reproducible run (default: random)"},
      {"prefix", "DEMO_PREFIX", "order ids are PREFIX-000001, ...", "ORD-DEMO"},
      {"help", "", "print this help", std::nullopt, false, true},
  };
  if (std::find_if(args.begin(), args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; }) != args.end()) {
    std::cout << oss::core::format_help("demo-producer --crm-db URL --mes-db URL [flags]", specs)
              << "\nEmits order status changes through outbox.emit into a CRM and an MES database, each in one\n"
                 "transaction with an upsert of the table demo_orders (created if missing). Orders walk the\n"
                 "shipped workflow; an order's next step is emitted only after its previous one committed.\n"
                 "Run `outbox-relay install --db URL` on both databases first.\n"
                 "exit codes: 0 done, 2 bad usage, 3 a database is unreachable\n";
    return 0;
  }
  const auto f = oss::core::parse_flags(specs, args);
  Config cfg;
  cfg.db[kCrm] = f.get("crm-db");
  cfg.db[kMes] = f.get("mes-db");
  oss::core::require_pg_url(cfg.db[kCrm], "--crm-db");
  oss::core::require_pg_url(cfg.db[kMes], "--mes-db");
  cfg.orders = parse_long(f, "orders", 0, 99'999'999);
  cfg.concurrency = parse_long(f, "concurrency", 1, 64);
  cfg.rollback_percent = parse_long(f, "rollback-percent", 0, 90);
  cfg.prefix = f.get("prefix");
  if (cfg.prefix.empty() || cfg.prefix.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != std::string::npos)
    throw UsageError("--prefix: expected letters, digits, - or _, got '" + cfg.prefix + "'");
  const std::string rate = f.get("rate");
  try {
    std::size_t used = 0;
    cfg.rate = std::stod(rate, &used);
    if (used != rate.size() || !(cfg.rate >= 0 && cfg.rate <= 1e6)) throw std::invalid_argument(rate);
  } catch (const std::logic_error&) {
    throw UsageError("--rate: expected a number of events per second in [0, 1000000], got '" + rate + "'");
  }
  if (f.has("seed")) {
    cfg.seed = static_cast<std::uint64_t>(parse_long(f, "seed", 0, std::numeric_limits<long>::max()));
  } else {
    cfg.seed = std::random_device{}() % 1'000'000;
  }

  // Reach both databases once: exit 3 when one is down, 2 when the outbox schema is missing.
  long first_number = 1;
  for (Source src : {kCrm, kMes}) {
    std::unique_ptr<pqxx::connection> c;
    try {
      c = connect(cfg.db[src]);
    } catch (const pqxx::broken_connection& e) {
      throw oss::core::DependencyError(fmt::format("cannot connect to the {} database {}: {}", kSourceName[src],
                                                   oss::core::mask_url(cfg.db[src]), trimmed(e.what())));
    }
    pqxx::work w{*c};
    if (w.exec("SELECT to_regprocedure('outbox.emit(text,text,text,text,jsonb,jsonb)') IS NULL")[0][0].as<bool>())
      throw UsageError(fmt::format("the {} database {} has no outbox schema; run `outbox-relay install --db URL` first",
                                   kSourceName[src], oss::core::mask_url(cfg.db[src])));
    w.exec("CREATE TABLE IF NOT EXISTS demo_orders (order_id text PRIMARY KEY, status text, updated_at timestamptz)");
    // Continue numbering after an earlier run's orders, so a rerun never collides with them.
    first_number = std::max(first_number, 1 + w.exec_params("SELECT coalesce(max(substr(order_id, length($1) + 2)::bigint), 0) "
                                                            "FROM demo_orders WHERE left(order_id, length($1) + 1) = $1 || '-' "
                                                            "AND substr(order_id, length($1) + 2) ~ '^[0-9]{1,15}$'",
                                                            cfg.prefix)[0][0].as<long>());
    w.commit();
  }
  const long last_number = cfg.orders > 0 ? first_number + cfg.orders - 1 : 0;

  if (std::signal(SIGINT, on_signal) == SIG_ERR || std::signal(SIGTERM, on_signal) == SIG_ERR)
    throw std::runtime_error("cannot install the SIGINT/SIGTERM handlers");
  std::cerr << fmt::format("demo-producer: {} orders from {}-{:06}, {} events/s, {} threads, {}% rolled back, seed {}\n",
                           cfg.orders > 0 ? std::to_string(cfg.orders) : "unlimited", cfg.prefix, first_number,
                           cfg.rate, cfg.concurrency, cfg.rollback_percent, cfg.seed);
  Stats stats;
  Pacer pacer(cfg.rate);
  std::atomic<long> next_number{first_number};
  std::mutex error_mu;
  std::exception_ptr error;
  std::atomic<long> running{cfg.concurrency};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < static_cast<std::size_t>(cfg.concurrency); ++i) {
    threads.emplace_back([&, i] {
      try {
        worker(cfg, i, next_number, last_number, pacer, stats);
      } catch (const std::exception&) {
        std::lock_guard lock(error_mu);
        if (!error) error = std::current_exception();
        g_stop = true;
      }
      running--;
    });
  }
  const auto start = Clock::now();
  for (auto next_report = start + 5s; running > 0; std::this_thread::sleep_for(100ms)) {
    if (Clock::now() >= next_report) {
      std::cerr << "demo-producer: " << progress(stats, std::chrono::duration<double>(Clock::now() - start).count()) << "\n";
      next_report += 5s;
    }
  }
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);

  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << fmt::format("demo-producer: {} after {:.1f}s\n", g_stop ? "stopped" : "done", seconds)
            << fmt::format("  orders       {} ({}-{:06} .. {}-{:06}): {} delivered, {} cancelled, {} left in flight\n",
                           stats.orders.load(), cfg.prefix, first_number, cfg.prefix,
                           std::max(stats.highest.load(), first_number), stats.delivered.load(),
                           stats.cancelled.load(), stats.orders - stats.delivered - stats.cancelled)
            << fmt::format("  committed    {} events (crm {}, mes {})\n", stats.committed[kCrm] + stats.committed[kMes],
                           stats.committed[kCrm].load(), stats.committed[kMes].load())
            << fmt::format("  rolled back  {} events (crm {}, mes {}); these never existed and are never published\n",
                           stats.rolled_back[kCrm] + stats.rolled_back[kMes], stats.rolled_back[kCrm].load(),
                           stats.rolled_back[kMes].load());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const UsageError& e) {
    std::cerr << "demo-producer: error: " << e.what() << "\n";
    return oss::core::kExitUsage;
  } catch (const oss::core::DependencyError& e) {
    std::cerr << "demo-producer: error: " << e.what() << "\n";
    return oss::core::kExitDependency;
  } catch (const pqxx::broken_connection& e) {
    std::cerr << "demo-producer: error: database unreachable: " << e.what() << "\n";
    return oss::core::kExitDependency;
  } catch (const std::exception& e) {
    std::cerr << "demo-producer: error: " << e.what() << "\n";
    return oss::core::kExitProblem;
  }
}
