#include "client/device_identity.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <regex>

#include "client/io_error.h"
#include "common/fd.h"
#include "common/file.h"
#include "crypto/random.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDeviceIdFile = "device_id";
constexpr const char* kWrapKeyFile = "x25519.key";
constexpr const char* kSigningKeyFile = "ed25519.key";

std::string ModeText(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

bool IsUuid(const std::string& s) {
  static const std::regex kUuid("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");
  return std::regex_match(s, kUuid);
}

// Reads a private key through one descriptor opened without following symlinks, and checks the
// mode of that same descriptor (fstat), so the file checked is the file read.
Result<crypto::PrivateKey> LoadPrivateKey(const fs::path& path, crypto::KeyType type) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    if (errno == ENOENT) return MakeError(ErrorCode::kNotFound, path.string() + " does not exist");
    if (errno == ELOOP) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "private key file " + path.string() + " is a symlink: refused");
    }
    return tl::unexpected(IoError("cannot open", path, errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return tl::unexpected(IoError("cannot stat", path, errno));
  if (!S_ISREG(st.st_mode)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "private key file " + path.string() + " is not a regular file");
  }
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "private key file " + path.string() + " has mode " + ModeText(st.st_mode) +
                         " or another owner: it must belong to this user and be readable by no " +
                         "one else (chmod 600); refusing to use it");
  }
  if (static_cast<uint64_t>(st.st_size) > crypto::kMaxPemSize) {
    return MakeError(ErrorCode::kLimitExceeded, path.string() + " is too large for a key");
  }
  std::string pem(static_cast<size_t>(st.st_size), '\0');
  auto read = PreadExact(fd.get(), 0,
                         std::span<uint8_t>(reinterpret_cast<uint8_t*>(pem.data()), pem.size()));
  auto key = read ? crypto::PrivateKey::FromPem(pem) : tl::unexpected(read.error());
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!key) return tl::unexpected(key.error().WithContext(path.string()));
  if (key->type() != type) {
    return MakeError(ErrorCode::kUnsupported,
                     path.string() + " holds a " + std::string(crypto::KeyTypeName(key->type())) +
                         " key, not " + std::string(crypto::KeyTypeName(type)));
  }
  return std::move(*key);
}

Result<void> WritePrivateKey(const crypto::PrivateKey& key, const fs::path& path) {
  std::string pem = key.ToPem();
  if (pem.empty()) return MakeError(ErrorCode::kCrypto, "cannot encode private key");
  // WriteFileAtomic creates its temporary file with mkstemp (0600) before writing, fsyncs it and
  // renames it into place.
  auto wrote = WriteFileAtomic(path, AsBytes(pem), 0600, Overwrite::kNever);
  OPENSSL_cleanse(pem.data(), pem.size());
  return wrote;
}

}  // namespace

std::string DeviceIdentity::WrapPublicKeyHex() const {
  return HexEncode(wrap_key.Public().RawPublic().value_or(Bytes{}));
}

std::string DeviceIdentity::SigningPublicKeyHex() const {
  return HexEncode(signing_key.Public().RawPublic().value_or(Bytes{}));
}

Result<std::string> NewDeviceId() {
  std::array<uint8_t, 16> b{};
  AIRLOCK_TRY(crypto::RandomFill(b));
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // variant 10
  const std::string hex = HexEncode(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

Result<DeviceIdentity> LoadDeviceIdentity(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) {
    return MakeError(ErrorCode::kNotFound, "no device identity at " + dir.string());
  }
  auto id_text = ReadTextFile(dir / kDeviceIdFile, 256);
  if (!id_text) return tl::unexpected(id_text.error().WithContext("device identity"));
  std::string device_id = *id_text;
  while (!device_id.empty() && (device_id.back() == '\n' || device_id.back() == '\r')) {
    device_id.pop_back();
  }
  if (!IsUuid(device_id)) {
    return MakeError(ErrorCode::kMalformed,
                     (dir / kDeviceIdFile).string() + " does not hold a UUID device id");
  }
  AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey wrap_key,
                           LoadPrivateKey(dir / kWrapKeyFile, crypto::KeyType::kX25519));
  AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey signing_key,
                           LoadPrivateKey(dir / kSigningKeyFile, crypto::KeyType::kEd25519));
  return DeviceIdentity{std::move(device_id), std::move(wrap_key), std::move(signing_key)};
}

Result<DeviceIdentity> LoadOrCreateDeviceIdentity(const fs::path& dir) {
  auto loaded = LoadDeviceIdentity(dir);
  if (loaded || loaded.error().code() != ErrorCode::kNotFound) return loaded;
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dir, ec))) return loaded;  // dir exists, a file is missing

  const fs::path parent = dir.parent_path().empty() ? fs::path(".") : dir.parent_path();
  fs::create_directories(parent, ec);
  if (ec)
    return MakeError(ErrorCode::kIo, "cannot create " + parent.string() + ": " + ec.message());
  AIRLOCK_ASSIGN_OR_RETURN(std::string device_id, NewDeviceId());
  AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey wrap_key,
                           crypto::PrivateKey::Generate(crypto::KeyType::kX25519));
  AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey signing_key,
                           crypto::PrivateKey::Generate(crypto::KeyType::kEd25519));
  {
    // The staging directory (0700) holds the files until all are durable. One left by a killed
    // run (private keys nobody will use) is removed first.
    const std::string prefix = "." + dir.filename().string() + ".new-";
    RemoveStaleStaging(parent, prefix, StagingKind::kDirectory);
    AIRLOCK_ASSIGN_OR_RETURN(ScopedTempDir staging, ScopedTempDir::Create(parent, prefix));
    AIRLOCK_TRY(WritePrivateKey(wrap_key, staging.path() / kWrapKeyFile));
    AIRLOCK_TRY(WritePrivateKey(signing_key, staging.path() / kSigningKeyFile));
    AIRLOCK_TRY(WriteFileAtomic(staging.path() / kDeviceIdFile, AsBytes(device_id + "\n"), 0644,
                                Overwrite::kNever));
    AIRLOCK_TRY(FsyncPath(staging.path()));
    auto placed = RenameNoReplace(staging.path(), dir);
    if (!placed) {
      // Another process created it first: use theirs (ours is removed with the staging).
      if (placed.error().code() == ErrorCode::kAlreadyExists) return LoadDeviceIdentity(dir);
      return tl::unexpected(placed.error());
    }
    staging.Release();
  }
  AIRLOCK_TRY(FsyncPath(parent));
  return DeviceIdentity{std::move(device_id), std::move(wrap_key), std::move(signing_key)};
}

}  // namespace airlock::client
