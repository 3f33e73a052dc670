#include "repo/repository_internal.h"

#include <cerrno>
#include <cstring>
#include <system_error>

#include "crypto/keys.h"

namespace airlock::repo::internal {

namespace fs = std::filesystem;

std::time_t NowOr(std::time_t now) { return now != 0 ? now : std::time(nullptr); }

fs::path StateDir(const fs::path& dir) { return dir / kStateDirName; }
fs::path StateFile(const fs::path& dir) { return StateDir(dir) / "repo.json"; }
fs::path MetadataDir(const fs::path& dir) { return dir / "metadata"; }
fs::path TargetsDir(const fs::path& dir) { return dir / "targets"; }

Error IoError(const std::string& what, const fs::path& path, int err) {
  return Error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
               what + " " + path.string() + ": " + std::strerror(err));
}

fs::path Absolute(const fs::path& p) {
  std::error_code ec;
  fs::path abs = fs::absolute(p, ec);
  return ec ? p : abs.lexically_normal();
}

Result<SignerPtr> LoadSigningKey(const SignerLoader& loader, const std::string& spec) {
  auto key = loader ? loader(spec) : LoadFileSigner(spec);
  if (!key) return tl::unexpected(key.error().WithContext("key " + spec));
  if (*key == nullptr) return MakeError(ErrorCode::kInternal, "key " + spec + ": no signer");
  if ((*key)->Public().type() == crypto::KeyType::kX25519) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "key " + spec + " is an x25519 key, which cannot sign metadata");
  }
  return std::move(*key);
}

std::string RecordedSpec(const fs::path& spec) {
  return IsKeyUriSpec(spec.string()) ? spec.string() : Absolute(spec).string();
}

std::vector<crypto::Signer*> Pointers(const std::vector<SignerPtr>& keys) {
  std::vector<crypto::Signer*> out;
  for (const auto& k : keys) out.push_back(k.get());
  return out;
}

}  // namespace airlock::repo::internal
