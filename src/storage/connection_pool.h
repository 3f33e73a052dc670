// Internal: a fixed set of connections to one database that SqlStore lends out, one caller per
// connection at a time. PostgreSQL gets several, so the server's threads read in parallel (as
// several airlockd on one database already do); SQLite gets one, so every statement of the
// embedded default stays serialised as before.
#ifndef AIRLOCK_STORAGE_CONNECTION_POOL_H_
#define AIRLOCK_STORAGE_CONNECTION_POOL_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "storage/connection.h"

namespace airlock::storage {

class ConnectionPool {
 public:
  // `conns` is not empty.
  explicit ConnectionPool(std::vector<std::unique_ptr<Connection>> conns)
      : conns_(std::move(conns)) {
    for (auto& c : conns_) free_.push_back(c.get());
  }
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // A connection held until the lease ends; Acquire waits while all are lent.
  class Lease {
   public:
    Lease(ConnectionPool* pool, Connection* conn) : pool_(pool), conn_(conn) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { pool_->Release(conn_); }
    Connection* operator->() const { return conn_; }
    Connection& operator*() const { return *conn_; }

   private:
    ConnectionPool* pool_;
    Connection* conn_;
  };

  [[nodiscard]] Lease Acquire() {
    std::unique_lock lock(mu_);
    available_.wait(lock, [this] { return !free_.empty(); });
    Connection* conn = free_.back();
    free_.pop_back();
    return Lease(this, conn);
  }

  size_t size() const { return conns_.size(); }

 private:
  void Release(Connection* conn) {
    {
      std::lock_guard lock(mu_);
      free_.push_back(conn);
    }
    available_.notify_one();
  }

  std::vector<std::unique_ptr<Connection>> conns_;
  std::mutex mu_;
  std::condition_variable available_;
  std::vector<Connection*> free_;  // guarded by mu_
};

}  // namespace airlock::storage

#endif  // AIRLOCK_STORAGE_CONNECTION_POOL_H_
