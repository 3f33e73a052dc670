#include "server/device_keys.h"

#include <utility>

#include "crypto/base64.h"
#include "server/server_api.h"

namespace airlock::server {

DeviceKeyService::DeviceKeyService(storage::Store* store, WrapFn wrap, Options options)
    : store_(store), wrap_(std::move(wrap)), options_(std::move(options)) {
  unsigned threads = options_.threads == 0 ? 1 : options_.threads;
  for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { Run(); });
}

DeviceKeyService::~DeviceKeyService() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    jobs_.clear();
  }
  work_.notify_all();
  for (auto& t : workers_) t.join();
}

std::string DeviceKeyService::Key(std::string_view app_id, std::string_view device_id,
                                  std::string_view sha256, std::string_view public_key) {
  std::string key;
  key.reserve(app_id.size() + device_id.size() + sha256.size() + public_key.size() + 3);
  // '/' appears in none of the parts (ids are [A-Za-z0-9._-], the others hex).
  key.append(app_id).append("/").append(device_id).append("/").append(sha256).append("/").append(
      public_key);
  return key;
}

Result<std::optional<std::string>> DeviceKeyService::Lookup(const storage::Device& device,
                                                            const std::string& sha256) {
  std::string key = Key(device.app_id, device.device_id, sha256, device.public_key);
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) return std::optional(it->second);
    if (queued_.contains(key)) return std::optional<std::string>();
  }
  auto stored = store_->GetWrappedKey(device.app_id, device.device_id, sha256);
  if (stored && stored->public_key == device.public_key) {
    std::lock_guard lock(mutex_);
    if (cache_.size() >= options_.max_cached) cache_.clear();
    cache_[key] = stored->wrapped_key;
    return std::optional(stored->wrapped_key);
  }
  if (!stored && stored.error().code() != ErrorCode::kNotFound) {
    return tl::unexpected(stored.error());
  }
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || jobs_.size() >= options_.max_queued || !queued_.insert(key).second) {
      return std::optional<std::string>();
    }
    jobs_.push_back(Job{device.app_id, device.device_id, sha256, device.public_key});
  }
  work_.notify_one();
  return std::optional<std::string>();
}

void DeviceKeyService::Run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    work_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (stopping_) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    Process(job);
    lock.lock();
    --running_;
    queued_.erase(Key(job.app_id, job.device_id, job.sha256, job.public_key));
    if (jobs_.empty() && running_ == 0) idle_.notify_all();
  }
}

void DeviceKeyService::Process(const Job& job) {
  // A failed job stores nothing; the device's next check queues it again.
  auto fail = [this, &job](std::string_view why) {
    api_internal::LogJson({{"level", "warn"},
                           {"msg", "device key wrap failed"},
                           {"app_id", job.app_id},
                           {"device_id", job.device_id},
                           {"sha256", job.sha256},
                           {"error", why}});
    std::lock_guard lock(mutex_);
    ++failed_;
  };
  // The device as it is now: one revoked, removed or re-keyed since the job was queued gets nothing.
  auto device = store_->GetDevice(job.app_id, job.device_id);
  if (!device) return fail(device.error().ToString());
  if (device->status == storage::DeviceStatus::kRevoked) return fail("device is revoked");
  if (device->public_key != job.public_key) return fail("device was re-keyed");
  auto raw = HexDecode(job.public_key);
  if (!raw) return fail(raw.error().ToString());
  auto key = crypto::PublicKey::FromRaw(crypto::KeyType::kX25519, *raw);
  if (!key) return fail(key.error().ToString());
  auto wrapped = wrap_(job.app_id, job.sha256, *key);
  {
    std::lock_guard lock(mutex_);
    ++wraps_;
  }
  if (!wrapped) return fail(wrapped.error().ToString());
  storage::WrappedKey row{job.app_id,     job.device_id,
                          job.sha256,     job.public_key,
                          crypto::Base64Encode(*wrapped), options_.clock ? options_.clock() : 0};
  if (auto put = store_->PutWrappedKey(row); !put) return fail(put.error().ToString());
  std::lock_guard lock(mutex_);
  if (cache_.size() >= options_.max_cached) cache_.clear();
  cache_[Key(job.app_id, job.device_id, job.sha256, job.public_key)] = row.wrapped_key;
}

void DeviceKeyService::WaitIdle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return jobs_.empty() && running_ == 0; });
}

uint64_t DeviceKeyService::wraps() const {
  std::lock_guard lock(mutex_);
  return wraps_;
}

uint64_t DeviceKeyService::failed() const {
  std::lock_guard lock(mutex_);
  return failed_;
}

}  // namespace airlock::server
