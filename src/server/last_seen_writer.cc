#include "server/last_seen_writer.h"

#include <algorithm>
#include <vector>

namespace airlock::server {

void LastSeenWriter::Keep(const Key& key, int64_t last_seen) {
  auto it = pending_.find(key);
  if (it != pending_.end()) {
    it->second = std::max(it->second, last_seen);
  } else if (pending_.size() < kMaxPending) {
    pending_.emplace(key, last_seen);
  } else {
    ++dropped_;
  }
}

Result<void> LastSeenWriter::Touch(const std::string& app_id, const std::string& device_id,
                                   int64_t last_seen) {
  if (mode_ == Mode::kThrough) {
    const storage::DeviceTouch touch{app_id, device_id, last_seen};
    return store_->TouchDevices({&touch, 1});
  }
  std::lock_guard lock(mu_);
  Keep({app_id, device_id}, last_seen);
  return {};
}

Result<size_t> LastSeenWriter::Flush() {
  std::map<Key, int64_t> taken;
  {
    std::lock_guard lock(mu_);
    taken.swap(pending_);
  }
  size_t written = 0;
  std::vector<storage::DeviceTouch> batch;
  batch.reserve(storage::kMaxTouchBatch);
  for (auto it = taken.begin(); it != taken.end();) {
    batch.clear();
    auto end = it;
    while (end != taken.end() && batch.size() < storage::kMaxTouchBatch) {
      batch.push_back({end->first.first, end->first.second, end->second});
      ++end;
    }
    if (auto ok = store_->TouchDevices(batch); !ok) {
      // Keep what was not written (a newer touch recorded meanwhile wins), except a batch the
      // store refuses as invalid: it would be refused again forever.
      std::lock_guard lock(mu_);
      if (ok.error().code() == ErrorCode::kInvalidArgument) it = end;
      for (; it != taken.end(); ++it) Keep(it->first, it->second);
      return tl::unexpected(ok.error());
    }
    written += batch.size();
    it = end;
  }
  return written;
}

size_t LastSeenWriter::pending() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

uint64_t LastSeenWriter::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace airlock::server
