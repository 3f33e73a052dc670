#include "server/vault_secret.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/bytes.h"
#include "common/fd.h"
#include "common/file.h"
#include "crypto/random.h"
#include "keys/key_uri.h"

namespace airlock::server {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxSecretFile = 4096;
constexpr const char* kCliPassphraseEnv = "AIRLOCK_VAULT_PASSPHRASE";

std::string DropNewlines(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

Result<std::string> ReadSecretFile(const fs::path& path) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, kMaxSecretFile));
  text = DropNewlines(std::move(text));
  if (text.empty()) return MakeError(ErrorCode::kInvalidArgument, path.string() + " is empty");
  return text;
}

// What to add to an error when the CLI's variable is set: airlockd ignores it on purpose.
std::string CliVariableNote() {
  if (std::getenv(kCliPassphraseEnv) == nullptr) return "";
  return std::string(" ($") + kCliPassphraseEnv + " is the airlock CLI's; airlockd ignores it)";
}

// DATA/vault.pass: a regular file, never followed through a symbolic link.
Result<void> CheckPassFile(const fs::path& pass) {
  struct stat st {};
  if (::lstat(pass.c_str(), &st) != 0) {
    if (errno == ENOENT) return MakeError(ErrorCode::kNotFound, pass.string() + " does not exist");
    return MakeError(ErrorCode::kIo, "cannot stat " + pass.string() + ": " + std::strerror(errno));
  }
  if (S_ISLNK(st.st_mode)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     pass.string() +
                         " is a symbolic link; airlockd reads its generated passphrase "
                         "file only as a regular file (replace the link by the file, or "
                         "give --vault-passphrase-file)");
  }
  if (!S_ISREG(st.st_mode)) {
    return MakeError(ErrorCode::kInvalidArgument, pass.string() + " is not a regular file");
  }
  return {};
}

Result<std::string> ReadPassFile(const fs::path& pass) {
  UniqueFd fd(::open(pass.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
  if (!fd.valid()) {
    if (errno == ELOOP) AIRLOCK_TRY(CheckPassFile(pass));  // the symlink message
    return MakeError(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                     "cannot read " + pass.string() + ": " + std::strerror(errno));
  }
  char buf[kMaxSecretFile + 1];
  AIRLOCK_ASSIGN_OR_RETURN(
      size_t n,
      PreadSome(fd.get(), 0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf), sizeof buf)));
  if (n > kMaxSecretFile) {
    return MakeError(ErrorCode::kLimitExceeded, pass.string() + " is larger than 4096 bytes");
  }
  std::string text = DropNewlines(std::string(buf, n));
  std::memset(buf, 0, sizeof buf);
  if (text.empty()) return MakeError(ErrorCode::kInvalidArgument, pass.string() + " is empty");
  return text;
}

// Creates DATA/vault.pass exclusively (O_EXCL|O_NOFOLLOW: never through a link, never over a file),
// mode 0600. DATA itself is owner-only (airlockd makes it 0700 at start).
Result<void> WritePassFile(const fs::path& pass) {
  AIRLOCK_ASSIGN_OR_RETURN(Bytes random, crypto::RandomBytes(32));
  const std::string hex = HexEncode(random) + "\n";
  UniqueFd fd(::open(pass.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    if (errno == EEXIST) AIRLOCK_TRY(CheckPassFile(pass));
    return MakeError(ErrorCode::kIo,
                     "cannot create " + pass.string() + ": " + std::strerror(errno));
  }
  auto written = WriteAll(
      fd.get(), std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(hex.data()), hex.size()));
  if (written && ::fsync(fd.get()) != 0) {
    written = MakeError(ErrorCode::kIo, "fsync " + pass.string() + ": " + std::strerror(errno));
  }
  if (written && fd.Close() != 0) {
    written = MakeError(ErrorCode::kIo, "close " + pass.string() + ": " + std::strerror(errno));
  }
  if (!written) {
    std::error_code ec;
    fs::remove(pass, ec);
    return tl::unexpected(written.error());
  }
  return {};
}

}  // namespace

std::string ServerVaultUri(const ServerConfig& config) {
  if (!config.vault.empty()) return config.vault;
  return "file:" + (fs::path(config.data) / "vault.db").string();
}

Result<VaultSecret> ChooseVaultSecret(const ServerConfig& config) {
  if (!config.vault_passphrase_file.empty()) {
    const fs::path file = config.vault_passphrase_file;
    return VaultSecret{[file] { return ReadSecretFile(file); },
                       "--vault-passphrase-file " + file.string()};
  }
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyUri uri, keys::ParseKeyUri(ServerVaultUri(config)));
  if (uri.scheme != keys::KeyUriScheme::kFile) {
    return VaultSecret{{}, "the URI's pin-source, else $AIRLOCK_PKCS11_PIN (PKCS#11 PIN)"};
  }
  if (const char* env = std::getenv(kServerVaultPassphraseEnv); env != nullptr && *env != '\0') {
    std::string value = env;
    return VaultSecret{[value]() -> Result<std::string> { return value; },
                       std::string("$") + kServerVaultPassphraseEnv};
  }
  if (!config.vault.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "no passphrase for the vault " + config.vault +
                         ": give --vault-passphrase-file FILE (vault_passphrase_file) or set $" +
                         kServerVaultPassphraseEnv + CliVariableNote());
  }
  const fs::path vault = fs::path(config.data) / "vault.db";
  const fs::path pass = fs::path(config.data) / "vault.pass";
  auto checked = CheckPassFile(pass);
  if (!checked && checked.error().code() != ErrorCode::kNotFound) {
    return tl::unexpected(checked.error());
  }
  if (!checked) {
    std::error_code ec;
    const bool vault_exists = fs::symlink_status(vault, ec).type() != fs::file_type::not_found;
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return MakeError(ErrorCode::kIo, "cannot stat " + vault.string() + ": " + ec.message());
    }
    if (vault_exists) {
      return MakeError(ErrorCode::kNotFound,
                       "the vault " + vault.string() + " exists but its passphrase file " +
                           pass.string() +
                           " does not; airlockd makes no new passphrase for an existing vault: "
                           "restore the file, or give --vault-passphrase-file FILE or $" +
                           kServerVaultPassphraseEnv + CliVariableNote());
    }
    AIRLOCK_TRY(WritePassFile(pass));
    return VaultSecret{[pass] { return ReadPassFile(pass); },
                       pass.string() +
                           " (generated now, mode 0600: keep a copy, see "
                           "docs/operations/server.md)"};
  }
  return VaultSecret{[pass] { return ReadPassFile(pass); }, pass.string()};
}

}  // namespace airlock::server
