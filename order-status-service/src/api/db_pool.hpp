#pragma once
/// A few worker threads, each with its own database connection (libpqxx connections are
/// single-threaded), that run blocking queries for the HTTP handlers so the I/O thread never
/// blocks. The job queue is bounded: when it is full, submit() returns false and the handler
/// answers 503 instead of queueing without limit.
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "store/order_store.hpp"

namespace oss::api {

class DbPool {
 public:
  using Job = std::function<void(store::PgOrderStore&)>;
  DbPool(pg::ConnectOptions options, std::size_t threads, std::size_t max_queued);
  ~DbPool();
  DbPool(const DbPool&) = delete;
  DbPool& operator=(const DbPool&) = delete;

  /// Runs job on a worker; the job must catch its own exceptions (it is given a store whose
  /// connection is reset after a failure). False when the queue is full or stopping.
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
