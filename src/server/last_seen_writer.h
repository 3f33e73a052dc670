// last_seen written behind the request (issue 16). /v1/check records a device's time here (one map
// insert under a mutex, no database) and a periodic task calls Flush, which writes what
// accumulated in batches of storage::kMaxTouchBatch (Store::TouchDevices: one statement, one
// commit each). A fleet whose devices each check once an hour then costs no database write, and no
// commit, inside a request: at 10 M devices that is ~2 800 writes/s that were serialised on the
// store's connection. A crash loses at most one flush interval of last_seen, which is accurate to
// ServerApiDeps::last_seen_interval (60 s) anyway; every other device write stays synchronous.
#ifndef AIRLOCK_SERVER_LAST_SEEN_WRITER_H_
#define AIRLOCK_SERVER_LAST_SEEN_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "common/result.h"
#include "storage/store.h"

namespace airlock::server {

class LastSeenWriter {
 public:
  enum class Mode {
    kBehind,   // Touch records; Flush writes (airlockd flushes every second)
    kThrough,  // Touch writes at once (tests, tools: what they read is already written)
  };
  // Touches held at most (a database that is down for long must not grow memory without bound);
  // beyond it new devices' touches are dropped (counted in dropped()) until a flush succeeds.
  static constexpr size_t kMaxPending = 200000;

  LastSeenWriter(storage::Store* store, Mode mode) : store_(store), mode_(mode) {}
  LastSeenWriter(const LastSeenWriter&) = delete;
  LastSeenWriter& operator=(const LastSeenWriter&) = delete;

  // Records that the device was seen at `last_seen` (the later time wins). kThrough: written now,
  // and a failed write is returned; kBehind: never fails.
  Result<void> Touch(const std::string& app_id, const std::string& device_id, int64_t last_seen);
  // Writes every recorded touch, in batches; returns how many were written. On a store error the
  // touches not written stay recorded (an earlier time never replaces a later one) and the error
  // is returned. Two Flushes at once are safe: the store never moves a device's last_seen back.
  Result<size_t> Flush();

  size_t pending() const;
  uint64_t dropped() const;

 private:
  using Key = std::pair<std::string, std::string>;  // app id, device id
  void Keep(const Key& key, int64_t last_seen);     // requires mu_

  storage::Store* store_;
  Mode mode_;
  mutable std::mutex mu_;
  std::map<Key, int64_t> pending_;  // guarded by mu_
  uint64_t dropped_ = 0;            // guarded by mu_
};

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_LAST_SEEN_WRITER_H_
