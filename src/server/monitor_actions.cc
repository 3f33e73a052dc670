#include "server/monitor_actions.h"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/file.h"
#include "crypto/base64.h"
#include "crypto/hash.h"
#include "metadata/metadata.h"
#include "server/channel_cache.h"
#include "server/server_api.h"

namespace airlock::server {

Result<std::string> ServerResponder::SuspendKey(const monitor::Alert& alert) {
  const std::string name = alert.key_name;
  return repo_->WithKeyManager(
      [&](keys::KeyManager& m, const keys::OperationContext& ctx) -> Result<std::string> {
        keys::OperationContext why = ctx;
        why.reason = "alert " + std::to_string(alert.id) + " " + alert.rule;
        AIRLOCK_TRY(m.Suspend(why, name));
        return "suspended key " + name;
      });
}

Result<std::string> ServerResponder::RotateAndRevoke(const std::string& key_name) {
  return repo_->WithKeyManager(
      [&](keys::KeyManager& m, const keys::OperationContext& ctx) -> Result<std::string> {
        AIRLOCK_ASSIGN_OR_RETURN(keys::Rotation rotation, m.Rotate(ctx, key_name));
        AIRLOCK_TRY_CTX(m.Revoke(ctx, rotation.old_key.name),
                        "rotated " + key_name + " but could not revoke " + rotation.old_key.name);
        return "rotated " + key_name + " (new key id " + rotation.new_key.key_id + "), revoked " +
               rotation.old_key.name;
      });
}

Result<std::string> ServerResponder::RotateKey(const monitor::Alert& alert) {
  return RotateAndRevoke(alert.key_name);
}

Result<std::string> ServerResponder::PauseChannels(const std::string& app_id,
                                                   const std::string* version) {
  AIRLOCK_ASSIGN_OR_RETURN(auto channels, store_->ListChannels(app_id));
  std::string paused;
  for (storage::Channel& c : channels) {
    if (version != nullptr && c.current_version != *version) continue;
    if (!c.paused) {
      c.paused = true;
      AIRLOCK_TRY(store_->UpdateChannel(c));
    }
    paused += (paused.empty() ? "" : ",") + c.name;
  }
  if (cache_ != nullptr) cache_->Invalidate(app_id);
  return paused;
}

Result<std::string> ServerResponder::ReplaceAppKeys(const monitor::Alert& alert) {
  // Halt first: if a rotation fails, nothing is offered with keys in an unknown state.
  AIRLOCK_ASSIGN_OR_RETURN(std::string paused, PauseChannels(alert.app_id, nullptr));
  std::string out = "paused channels [" + paused + "]";
  for (const std::string& name : AppRepo::OnlineKeyNames(alert.app_id)) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string done, RotateAndRevoke(name));
    out += "; " + done;
  }
  return out + "; sign a root naming the new online keys, then resume";
}

Result<std::string> ServerResponder::PauseRollout(const monitor::Alert& alert) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string paused, PauseChannels(alert.app_id, &alert.version));
  if (paused.empty()) return "no channel offers " + alert.version + " any more";
  return "paused channels [" + paused + "] offering " + alert.version;
}

namespace {

constexpr size_t kMaxForeignDocument = 64 * 1024;

// Did the server write `document` (role, version) into `dir`? nullopt when it cannot tell.
std::optional<bool> ServerWrote(const std::filesystem::path& dir, const std::string& role,
                                int64_t version, const std::string& sha256) {
  auto digest = [](const std::filesystem::path& p) -> std::optional<std::string> {
    auto sha = crypto::Sha256File(p);
    if (!sha) return std::nullopt;
    return HexEncode(*sha);
  };
  if (role == "snapshot") {
    auto ours = digest(dir / (std::to_string(version) + ".snapshot.json"));
    return ours && *ours == sha256;
  }
  auto text = ReadTextFile(dir / "timestamp.json", 1 << 20);
  if (!text) return std::nullopt;
  auto served = metadata::ParseTimestamp(*text);
  if (!served) return std::nullopt;
  const auto served_version = static_cast<int64_t>(served->signed_data.version);
  if (version > served_version) return false;
  if (version == served_version) return digest(dir / "timestamp.json") == sha256;
  return std::nullopt;  // an older timestamp: not kept, so not comparable
}

std::optional<monitor::ForeignMetadata> ForeignDocument(AppRepo* repo,
                                                        const std::filesystem::path& data_dir,
                                                        const std::string& app,
                                                        const std::string& document_base64) {
  if (!api_internal::IsValidId(app) || app[0] == '.') return std::nullopt;
  if (document_base64.size() > kMaxForeignDocument * 4 / 3 + 4) return std::nullopt;
  auto bytes = crypto::Base64Decode(document_base64);
  if (!bytes || bytes->empty()) return std::nullopt;
  const std::string document(bytes->begin(), bytes->end());
  auto envelope = metadata::Envelope::Parse(document, kMaxForeignDocument);
  if (!envelope) return std::nullopt;
  const auto type = envelope->signed_json.find("_type");
  if (type == envelope->signed_json.end() || !type->is_string()) return std::nullopt;
  const std::string role = type->get<std::string>();
  int64_t version = 0;
  if (role == "snapshot") {
    auto parsed = metadata::ParseSnapshot(document, kMaxForeignDocument);
    if (!parsed) return std::nullopt;
    version = static_cast<int64_t>(parsed->signed_data.version);
  } else if (role == "timestamp") {
    auto parsed = metadata::ParseTimestamp(document, kMaxForeignDocument);
    if (!parsed) return std::nullopt;
    version = static_cast<int64_t>(parsed->signed_data.version);
  } else {
    return std::nullopt;
  }
  // Signed by the key the vault holds for that role now: nothing else says anything about it.
  auto online = repo->GetOnlineKeys(app);
  if (!online) return std::nullopt;
  const bool snapshot = role == "snapshot";
  auto key = metadata::Key::FromJson(snapshot ? online->snapshot_key : online->timestamp_key);
  if (!key || !key->usable()) return std::nullopt;
  const std::string keyid = snapshot ? online->snapshot_keyid : online->timestamp_keyid;
  if (metadata::CountValidSignatures(*envelope, {{keyid, *key}}, {keyid}) == 0) {
    return std::nullopt;
  }
  const std::string sha256 = HexEncode(crypto::Sha256(*bytes));
  auto wrote = ServerWrote(data_dir / "tuf" / app, role, version, sha256);
  if (!wrote || *wrote) return std::nullopt;
  const auto names = AppRepo::OnlineKeyNames(app);
  return monitor::ForeignMetadata{snapshot ? names[0] : names[1], role, version, sha256};
}

monitor::ContentCheck CheckOwnCopy(AppRepo* repo, const std::filesystem::path& data_dir,
                                   const std::string& app, const std::string& version) {
  using State = monitor::ContentCheck::State;
  auto targets = repo->CurrentTargets(app);
  if (!targets) {
    return {State::kUnknown, "the server has no signed targets of " + app + " to compare with"};
  }
  int checked = 0;
  for (const TrustedTarget& t : *targets) {
    const auto v = t.custom.find("version");
    if (v == t.custom.end() || !v->is_string() || v->get<std::string>() != version) continue;
    ++checked;
    const std::filesystem::path blob = api_internal::BlobPath(data_dir, t.sha256);
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(blob, ec);
    if (ec) return {State::kDamaged, "target " + t.name + ": its blob cannot be read (" +
                                         ec.message() + ")"};
    if (size != t.length) {
      return {State::kDamaged, "target " + t.name + ": " + std::to_string(size) +
                                   " bytes on disk, " + std::to_string(t.length) + " signed"};
    }
    auto sha = crypto::Sha256File(blob);
    if (!sha) {
      return {State::kDamaged, "target " + t.name + ": its blob cannot be read (" +
                                   sha.error().message() + ")"};
    }
    if (HexEncode(*sha) != t.sha256) {
      return {State::kDamaged, "target " + t.name + ": SHA-256 on disk " + HexEncode(*sha) +
                                   ", signed " + t.sha256};
    }
  }
  if (checked == 0) return {State::kUnknown, "no signed target of " + app + " has version " + version};
  return {State::kIntact, "the server's copy of " + version + " matches its signed length and " +
                              "SHA-256 (" + std::to_string(checked) + " target" +
                              (checked == 1 ? "" : "s") + ")"};
}

}  // namespace

monitor::Corroboration ServerCorroboration(AppRepo* repo, std::filesystem::path data_dir) {
  struct Cached {
    monitor::ContentCheck answer;
    std::chrono::steady_clock::time_point at;
  };
  struct ContentCache {
    std::mutex mu;
    std::map<std::pair<std::string, std::string>, Cached> answers;
  };
  auto cache = std::make_shared<ContentCache>();
  monitor::Corroboration out;
  out.foreign_metadata = [repo, data_dir](const std::string& app, const std::string& document) {
    return ForeignDocument(repo, data_dir, app, document);
  };
  out.content = [repo, data_dir, cache](const std::string& app, const std::string& version) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(cache->mu);
    auto& slot = cache->answers[{app, version}];
    if (slot.at.time_since_epoch().count() == 0 || now - slot.at >= std::chrono::seconds(60)) {
      if (cache->answers.size() > 1000) {  // bounded: reports name versions freely
        cache->answers.clear();
        return CheckOwnCopy(repo, data_dir, app, version);
      }
      slot = {CheckOwnCopy(repo, data_dir, app, version), now};
    }
    return slot.answer;
  };
  return out;
}

}  // namespace airlock::server
