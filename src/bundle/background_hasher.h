// SHA-256 over a sequence of blocks on a second thread, so that a caller can hash and decrypt the
// same bytes at the same time (bundle.cc reads a payload once, hashing and decrypting each block).
#ifndef AIRLOCK_BUNDLE_BACKGROUND_HASHER_H_
#define AIRLOCK_BUNDLE_BACKGROUND_HASHER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "common/bytes.h"
#include "crypto/hash.h"

namespace airlock::bundle {

// Blocks are hashed in the order they are submitted. A submitted block must stay unchanged until
// WaitHashed says it is done. When no thread can be started, Submit hashes on the caller's thread
// (the digest is the same). Not thread-safe itself: one caller thread.
class BackgroundHasher {
 public:
  BackgroundHasher();
  ~BackgroundHasher();
  BackgroundHasher(const BackgroundHasher&) = delete;
  BackgroundHasher& operator=(const BackgroundHasher&) = delete;

  // Queues `block`; returns its sequence number (1, 2, ...).
  uint64_t Submit(ByteSpan block);
  // Returns once the block numbered `sequence` (and every one before it) has been hashed.
  void WaitHashed(uint64_t sequence);
  // Waits for every block and returns their digest; the next block starts a new one.
  Bytes TakeDigest();
  // Waits for every block, stops the thread and returns the digest.
  Bytes Finish();

 private:
  void Run();
  void Stop();

  crypto::Hasher hasher_ = crypto::Hasher::Sha256();
  std::mutex mu_;
  std::condition_variable work_;  // a block was queued, or stopping
  std::condition_variable done_;  // a block was hashed
  std::deque<ByteSpan> queue_;
  uint64_t submitted_ = 0;
  uint64_t hashed_ = 0;
  bool stopping_ = false;
  std::thread thread_;  // not joinable: hash inline
};

}  // namespace airlock::bundle

#endif  // AIRLOCK_BUNDLE_BACKGROUND_HASHER_H_
