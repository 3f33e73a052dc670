#include "bundle/background_hasher.h"

#include <system_error>
#include <utility>

namespace airlock::bundle {

BackgroundHasher::BackgroundHasher() {
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error&) {
    // No thread (resource limits): Submit hashes inline.
  }
}

BackgroundHasher::~BackgroundHasher() { Stop(); }

void BackgroundHasher::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;  // Finish waited for every block; otherwise the caller gave up
    const ByteSpan block = queue_.front();
    lock.unlock();
    hasher_.Update(block);
    lock.lock();
    queue_.pop_front();
    ++hashed_;
    done_.notify_all();
  }
}

uint64_t BackgroundHasher::Submit(ByteSpan block) {
  if (!thread_.joinable()) {
    hasher_.Update(block);
    return hashed_ = ++submitted_;
  }
  {
    std::lock_guard lock(mu_);
    queue_.push_back(block);
    ++submitted_;
  }
  work_.notify_one();
  return submitted_;
}

void BackgroundHasher::WaitHashed(uint64_t sequence) {
  std::unique_lock lock(mu_);
  done_.wait(lock, [&] { return hashed_ >= sequence; });
}

void BackgroundHasher::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_.notify_one();
  thread_.join();
}

Bytes BackgroundHasher::TakeDigest() {
  WaitHashed(submitted_);
  // The thread is idle until the next Submit: the hasher is the caller's meanwhile.
  Bytes digest = hasher_.Finish();
  hasher_ = crypto::Hasher::Sha256();
  return digest;
}

Bytes BackgroundHasher::Finish() {
  WaitHashed(submitted_);
  Stop();
  return hasher_.Finish();
}

}  // namespace airlock::bundle
