#include "api/db_pool.hpp"

namespace oss::api {

DbSession::DbSession(pg::ConnectOptions options) : options_(options), store_(std::move(options)) {}

pqxx::connection& DbSession::conn() {
  if (!conn_ || !conn_->is_open()) conn_ = pg::connect(options_);
  return *conn_;
}

void DbSession::reset() {
  store_.reset();
  conn_.reset();
}

DbPool::DbPool(pg::ConnectOptions options, std::size_t threads, std::size_t max_queued)
    : options_(std::move(options)), max_queued_(max_queued) {
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this, i] { worker(i); });
}

DbPool::~DbPool() { stop(); }

bool DbPool::submit(Job job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || jobs_.size() >= max_queued_) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void DbPool::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void DbPool::worker(std::size_t) {
  DbSession session(options_);  // connects lazily on first use
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping and drained
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job(session);
  }
}

}  // namespace oss::api
