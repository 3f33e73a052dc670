// Device-mode content keys, wrapped once per (device, release bundle) and stored.
//
// A release encrypted in `device` mode reaches a device with the bundle's content key wrapped to the
// device's X25519 key. Wrapping goes through the server's key vault (an unwrap and a usage-log
// record, tens of milliseconds on a file vault, longer on an HSM), so it never runs on an I/O
// thread: Lookup() answers from memory or from the Store (Store::GetWrappedKey), and when the key is
// not there yet it queues a job and answers nullopt at once (the device is told to come back: reason
// key_pending). Worker threads run the jobs: each re-reads the device (a device revoked or re-keyed
// meanwhile gets nothing), wraps, stores the result (Store::PutWrappedKey) and remembers it. So a
// device costs one wrap per release however often it checks, a flood of first checks queues jobs
// instead of holding I/O threads, and the store keeps the wraps across restarts and processes.
//
// Bounds: at most `max_queued` jobs wait (beyond that Lookup answers nullopt without queueing; the
// device's next check queues it); the in-memory map holds at most `max_cached` answers (cleared when
// full; the Store still has them).
//
// Thread-safety: every method may be called from any thread. The destructor stops the workers after
// the job each is running (queued jobs are dropped) and joins them.
#ifndef AIRLOCK_SERVER_DEVICE_KEYS_H_
#define AIRLOCK_SERVER_DEVICE_KEYS_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"
#include "storage/store.h"

namespace airlock::server {

class DeviceKeyService {
 public:
  // Wraps the content key of the app's bundle `sha256` to `device_key`; returns the wrapped bytes.
  using WrapFn = std::function<Result<Bytes>(const std::string& app_id, const std::string& sha256,
                                             const crypto::PublicKey& device_key)>;
  struct Options {
    unsigned threads = 1;
    size_t max_queued = 10000;
    size_t max_cached = 100000;
    std::function<int64_t()> clock;  // Unix seconds for WrappedKey::created_at
  };

  // `store` must outlive the service.
  DeviceKeyService(storage::Store* store, WrapFn wrap, Options options);
  ~DeviceKeyService();
  DeviceKeyService(const DeviceKeyService&) = delete;
  DeviceKeyService& operator=(const DeviceKeyService&) = delete;

  // The content key of bundle `sha256` wrapped to `device` (base64), or nullopt when it is not
  // wrapped yet (a job is queued unless max_queued are waiting). Store errors.
  [[nodiscard]] Result<std::optional<std::string>> Lookup(const storage::Device& device,
                                                          const std::string& sha256);

  // Blocks until no job is queued or running (tests, shutdown).
  void WaitIdle();
  uint64_t wraps() const;   // wrap calls made (successful or not)
  uint64_t failed() const;  // jobs that stored nothing because the wrap or the store failed

 private:
  struct Job {
    std::string app_id;
    std::string device_id;
    std::string sha256;
    std::string public_key;  // hex X25519 the device had when queued
  };
  static std::string Key(std::string_view app_id, std::string_view device_id,
                         std::string_view sha256, std::string_view public_key);
  void Run();
  void Process(const Job& job);

  storage::Store* const store_;
  const WrapFn wrap_;
  const Options options_;
  mutable std::mutex mutex_;
  std::condition_variable work_;  // jobs_ non-empty or stopping_
  std::condition_variable idle_;  // jobs_ empty and running_ == 0
  std::deque<Job> jobs_;                                // guarded by mutex_
  std::unordered_set<std::string> queued_;              // keys of jobs_ and running jobs
  std::unordered_map<std::string, std::string> cache_;  // key -> base64; guarded by mutex_
  size_t running_ = 0;                                  // guarded by mutex_
  bool stopping_ = false;                               // guarded by mutex_
  uint64_t wraps_ = 0;                                  // guarded by mutex_
  uint64_t failed_ = 0;                                 // guarded by mutex_
  std::vector<std::thread> workers_;
};

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_DEVICE_KEYS_H_
