#pragma once
/// A few worker threads, each with its own database connection (libpqxx connections are
/// single-threaded), that run blocking queries for the HTTP handlers so the I/O thread never
/// blocks. The job queue is bounded: when it is full, submit() returns false and the handler
/// answers 503 instead of queueing without limit.
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "store/order_store.hpp"

namespace oss::api {

/// What a job gets on its worker: the order store and, for the read-side queries that take a
/// plain connection (sla::list_orders, dlq::list ...), that worker's own connection. Both
/// connect lazily and belong to the worker thread; never keep them past the job.
class DbSession {
 public:
  explicit DbSession(pg::ConnectOptions options);
  store::PgOrderStore& store() { return store_; }
  /// The worker's plain connection (a second one: PgOrderStore keeps its own private).
  pqxx::connection& conn();
  /// Drops both connections after a failure; the next use reconnects.
  void reset();

 private:
  pg::ConnectOptions options_;
  store::PgOrderStore store_;
  std::unique_ptr<pqxx::connection> conn_;
};

class DbPool {
 public:
  using Job = std::function<void(DbSession&)>;
  DbPool(pg::ConnectOptions options, std::size_t threads, std::size_t max_queued);
  ~DbPool();
  DbPool(const DbPool&) = delete;
  DbPool& operator=(const DbPool&) = delete;

  /// Runs job on a worker; the job must catch its own exceptions (and reset() the session
  /// after a database failure). False when the queue is full or stopping.
  bool submit(Job job);
  void stop();

 private:
  void worker(std::size_t index);
  pg::ConnectOptions options_;
  std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace oss::api
