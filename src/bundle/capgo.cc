#include "bundle/capgo.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <utility>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/file.h"
#include "crypto/base64.h"
#include "crypto/hash.h"
#include "crypto/ossl.h"
#include "crypto/random.h"
#include "bundle/capgo_internal.h"
#include "crypto/rsa_raw.h"

namespace airlock::bundle::capgo {

namespace fs = std::filesystem;

namespace {

constexpr size_t kAesBlockSize = 16;
constexpr size_t kChunkSize = 64 * 1024;

// Owns a read-only file descriptor.
class InputFile {
 public:
  static Result<InputFile> Open(const fs::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      return MakeError(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                       "cannot open " + path.string() + ": " + std::strerror(err));
    }
    InputFile file(fd, path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      return MakeError(ErrorCode::kIo, "cannot stat " + path.string() + ": " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
      return MakeError(ErrorCode::kInvalidArgument, path.string() + " is not a regular file");
    }
    file.size_ = static_cast<uint64_t>(st.st_size);
    return file;
  }
  InputFile(InputFile&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)), size_(other.size_) {}
  InputFile& operator=(InputFile&&) = delete;
  ~InputFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  uint64_t size() const { return size_; }

  // Reads up to buf.size() bytes; 0 at end of file.
  Result<size_t> Read(std::span<uint8_t> buf) {
    while (true) {
      ssize_t n = ::read(fd_, buf.data(), buf.size());
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) {
        return MakeError(ErrorCode::kIo, "cannot read " + path_.string() + ": " + std::strerror(errno));
      }
    }
  }

 private:
  InputFile(int fd, fs::path path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  fs::path path_;
  uint64_t size_ = 0;
};

enum class Direction { kEncrypt, kDecrypt };

struct CryptStats {
  uint64_t in_size = 0;
  uint64_t out_size = 0;
  Bytes plain_sha256;
};

// Streams `in` through AES-128-CBC (PKCS#7) into `out`, hashing the plaintext side. Memory use is
// constant. On decryption a padding failure is kDecryptFailed; the caller never commits `out` then.
Result<CryptStats> Crypt(Direction direction, InputFile& in, const SessionKey& session,
                         AtomicFile& out) {
  const bool encrypt = direction == Direction::kEncrypt;
  crypto::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (session.key.size() != kAesKeySize) {
    return MakeError(ErrorCode::kInternal, "session key is not an AES-128 key");
  }
  if (!ctx || EVP_CipherInit_ex(ctx.get(), EVP_aes_128_cbc(), nullptr, session.key.get().data(),
                                session.iv.data(), encrypt ? 1 : 0) != 1) {
    return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "cannot set up AES-128-CBC"));
  }
  // PKCS#7 padding is OpenSSL's default; state it so the format does not hang on a default.
  EVP_CIPHER_CTX_set_padding(ctx.get(), 1);

  crypto::Hasher hasher = crypto::Hasher::Sha256();
  Bytes in_buf(kChunkSize);
  Bytes out_buf(kChunkSize + kAesBlockSize);
  CryptStats stats;
  while (true) {
    AIRLOCK_ASSIGN_OR_RETURN(size_t n, in.Read(in_buf));
    if (n == 0) break;
    stats.in_size += n;
    if (stats.in_size > kMaxPayloadSize) {
      return MakeError(ErrorCode::kLimitExceeded, "input grew past the size limit while reading");
    }
    if (encrypt) hasher.Update(ByteSpan(in_buf.data(), n));
    int out_len = 0;
    if (EVP_CipherUpdate(ctx.get(), out_buf.data(), &out_len, in_buf.data(), static_cast<int>(n)) !=
        1) {
      return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "AES-128-CBC failed"));
    }
    ByteSpan produced(out_buf.data(), static_cast<size_t>(out_len));
    if (!encrypt) hasher.Update(produced);
    AIRLOCK_TRY(out.Write(produced));
    stats.out_size += produced.size();
  }
  int out_len = 0;
  if (EVP_CipherFinal_ex(ctx.get(), out_buf.data(), &out_len) != 1) {
    if (encrypt) return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "AES-128-CBC failed"));
    crypto::ClearOsslErrors();
    return MakeError(ErrorCode::kDecryptFailed,
                     "payload has bad PKCS#7 padding: it was tampered with or truncated, or the "
                     "session key belongs to another bundle");
  }
  ByteSpan produced(out_buf.data(), static_cast<size_t>(out_len));
  if (!encrypt) hasher.Update(produced);
  AIRLOCK_TRY(out.Write(produced));
  stats.out_size += produced.size();
  stats.plain_sha256 = hasher.Finish();
  return stats;
}

Result<size_t> RsaModulusBytes(const crypto::PublicKey& key) {
  if (key.type() != crypto::KeyType::kRsa) {
    return MakeError(ErrorCode::kUnsupported, "Capgo encryption needs an RSA key");
  }
  return static_cast<size_t>((key.bits() + 7) / 8);
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

// Opens the encrypted input and checks its size before any work.
Result<InputFile> OpenCiphertext(const fs::path& path) {
  AIRLOCK_ASSIGN_OR_RETURN(InputFile in, InputFile::Open(path));
  if (in.size() > kMaxPayloadSize) {
    return MakeError(ErrorCode::kLimitExceeded,
                     path.string() + " is larger than the " + std::to_string(kMaxPayloadSize) +
                         "-byte limit");
  }
  if (in.size() == 0 || in.size() % kAesBlockSize != 0) {
    return MakeError(ErrorCode::kMalformed,
                     path.string() + " is not AES-CBC ciphertext (" + std::to_string(in.size()) +
                         " bytes, not a positive multiple of 16)");
  }
  return in;
}

// Decrypts to a temporary file and commits it only if padding and digest both check out.
Result<DecryptResult> DecryptVerified(const fs::path& encrypted_path, const SessionKey& session,
                                      ByteSpan expected_sha256, const fs::path& out_path) {
  AIRLOCK_ASSIGN_OR_RETURN(InputFile in, OpenCiphertext(encrypted_path));
  AIRLOCK_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(out_path, 0644, Overwrite::kNever));
  AIRLOCK_ASSIGN_OR_RETURN(CryptStats stats, Crypt(Direction::kDecrypt, in, session, out));
  if (!ConstantTimeEqual(stats.plain_sha256, expected_sha256)) {
    return MakeError(ErrorCode::kHashMismatch,
                     "checksum mismatch: decrypted payload has sha256 " +
                         HexEncode(stats.plain_sha256) + " but the signed checksum is " +
                         HexEncode(expected_sha256) + " (payload tampered with or not this bundle's)");
  }
  AIRLOCK_TRY(out.Commit());
  return DecryptResult{stats.out_size, std::move(stats.plain_sha256)};
}

}  // namespace

Result<SessionKey> ParseSessionKey(std::string_view text, const crypto::PublicKey& public_key) {
  AIRLOCK_ASSIGN_OR_RETURN(size_t modulus_bytes, RsaModulusBytes(public_key));
  if (text.empty()) return MakeError(ErrorCode::kMalformed, "session key is empty");
  if (text.size() > kMaxFieldText) {
    return MakeError(ErrorCode::kMalformed, "session key is longer than " +
                                                std::to_string(kMaxFieldText) + " characters");
  }
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) {
    return MakeError(ErrorCode::kMalformed,
                     "session key must be base64(IV):base64(encrypted key) with exactly one ':'");
  }
  auto iv = crypto::Base64Decode(text.substr(0, colon));
  if (!iv) return tl::unexpected(iv.error().WithContext("session key IV"));
  if (iv->size() != kIvSize) {
    return MakeError(ErrorCode::kMalformed,
                     "session key IV is " + std::to_string(iv->size()) + " bytes, expected 16");
  }
  auto block = crypto::Base64Decode(text.substr(colon + 1));
  if (!block) return tl::unexpected(block.error().WithContext("session key block"));
  if (block->empty()) return MakeError(ErrorCode::kMalformed, "session key has no encrypted key");
  if (block->size() != modulus_bytes) {
    // A block always has the modulus length; any other length cannot come from this key.
    return MakeError(ErrorCode::kBadSignature,
                     "session key does not decrypt with this public key (block is " +
                         std::to_string(block->size()) + " bytes, the key's are " +
                         std::to_string(modulus_bytes) + ")");
  }
  auto recovered = crypto::RsaPkcs1Type1Recover(public_key, *block);
  if (!recovered) {
    if (recovered.error().code() == ErrorCode::kBadSignature) {
      return MakeError(ErrorCode::kBadSignature,
                       "session key does not decrypt with this public key (wrong key, or the "
                       "session key was tampered with)");
    }
    return tl::unexpected(recovered.error().WithContext("session key"));
  }
  SessionKey session;
  session.key = crypto::SecretBytes(std::move(*recovered));  // wiped however this returns
  if (session.key.size() != kAesKeySize) {
    return MakeError(ErrorCode::kMalformed, "session key holds a " +
                                                std::to_string(session.key.size()) +
                                                "-byte key, expected 16 (AES-128)");
  }
  std::copy(iv->begin(), iv->end(), session.iv.begin());
  return session;
}

Result<Bytes> ParseChecksum(std::string_view text, const crypto::PublicKey& public_key) {
  AIRLOCK_ASSIGN_OR_RETURN(size_t modulus_bytes, RsaModulusBytes(public_key));
  if (text.empty()) return MakeError(ErrorCode::kMalformed, "checksum is empty");
  if (text.size() > kMaxFieldText) {
    return MakeError(ErrorCode::kMalformed,
                     "checksum is longer than " + std::to_string(kMaxFieldText) + " characters");
  }
  // Hex is tested first: every hex string of a length divisible by 4 is also valid base64.
  if (IsHex(text)) {
    if (text.size() % 2 != 0) {
      return MakeError(ErrorCode::kMalformed, "checksum has an odd number of hex digits");
    }
    if (text.size() == 2 * kDigestSize) {
      return MakeError(ErrorCode::kUnsupported,
                       "checksum is a bare sha256, not signed with the private key: an unsigned "
                       "checksum proves nothing about the bundle; encrypt it with `capgo bundle "
                       "encrypt` or `airlock capgo encrypt`");
    }
    if (text.size() != 2 * modulus_bytes) {
      return MakeError(ErrorCode::kBadSignature,
                       "checksum does not verify with this public key (a " +
                           std::to_string(text.size() / 2) + "-byte block; the key's are " +
                           std::to_string(modulus_bytes) + " bytes)");
    }
    AIRLOCK_ASSIGN_OR_RETURN(Bytes block, HexDecode(text));
    auto recovered = crypto::RsaPkcs1Type1Recover(public_key, block);
    if (!recovered) {
      if (recovered.error().code() == ErrorCode::kBadSignature) {
        return MakeError(ErrorCode::kBadSignature,
                         "checksum does not verify with this public key (wrong key, or the "
                         "checksum was tampered with)");
      }
      return tl::unexpected(recovered.error().WithContext("checksum"));
    }
    if (recovered->size() != kDigestSize) {
      return MakeError(ErrorCode::kMalformed, "checksum holds " + std::to_string(recovered->size()) +
                                                  " bytes, expected a 32-byte sha256");
    }
    return std::move(*recovered);
  }
  auto legacy = crypto::Base64Decode(text);
  if (legacy && legacy->size() == modulus_bytes) {
    // Capgo CLI before the v3 checksum signed base64-decode(hex sha256), a 48-byte value, and sent the
    // block in base64. Current plugins refuse it; so do we, rather than carry a second weak path.
    return MakeError(ErrorCode::kUnsupported,
                     "legacy Capgo v2 checksum (base64 RSA block) is not accepted: current "
                     "@capgo/capacitor-updater plugins reject it; re-encrypt with a current Capgo CLI "
                     "(hex checksum) or with `airlock capgo encrypt`");
  }
  return MakeError(ErrorCode::kMalformed, "checksum is neither hex nor base64");
}

Result<CapgoSigner> SignerFromPrivateKey(const crypto::PrivateKey& private_key) {
  if (private_key.type() != crypto::KeyType::kRsa) {
    return MakeError(ErrorCode::kUnsupported, "Capgo encryption needs an RSA private key, not " +
                                                  std::string(crypto::KeyTypeName(private_key.type())));
  }
  const crypto::PrivateKey* key = &private_key;
  return CapgoSigner{[key](ByteSpan data) { return crypto::RsaPkcs1Type1Sign(*key, data); },
                     private_key.Public()};
}

Result<EncryptResult> EncryptFile(const fs::path& zip_path, const crypto::PrivateKey& private_key,
                                  const fs::path& out_path) {
  AIRLOCK_ASSIGN_OR_RETURN(CapgoSigner signer, SignerFromPrivateKey(private_key));
  return EncryptFile(zip_path, signer, out_path);
}

namespace internal {

Result<Bytes> SignedBlock(const CapgoSigner& signer, ByteSpan data, std::string_view what) {
  AIRLOCK_ASSIGN_OR_RETURN(Bytes block, signer.private_encrypt(data));
  auto recovered = crypto::RsaPkcs1Type1Recover(signer.public_key, block);
  // The recovered bytes are the AES key for the session key block: wiped however this returns.
  crypto::SecretBytes plain(recovered ? std::move(*recovered) : Bytes());
  if (!recovered || plain.size() != data.size() ||
      CRYPTO_memcmp(plain.get().data(), data.data(), data.size()) != 0) {
    return MakeError(ErrorCode::kWrongKey, "the Capgo " + std::string(what) +
                                               " block does not recover under the public key: the "
                                               "private key is not its pair");
  }
  return block;
}

}  // namespace internal

using internal::SignedBlock;

Result<EncryptResult> EncryptFile(const fs::path& zip_path, const CapgoSigner& signer,
                                  const fs::path& out_path) {
  if (!signer.private_encrypt) {
    return MakeError(ErrorCode::kInvalidArgument, "Capgo signer has no private_encrypt function");
  }
  if (signer.public_key.type() != crypto::KeyType::kRsa) {
    return MakeError(ErrorCode::kUnsupported,
                     "Capgo encryption needs an RSA key, not " +
                         std::string(crypto::KeyTypeName(signer.public_key.type())));
  }
  if (signer.public_key.bits() < kMinRsaBits) {
    return MakeError(ErrorCode::kUnsupported, "Capgo encryption needs an RSA key of at least 2048 bits");
  }
  AIRLOCK_ASSIGN_OR_RETURN(InputFile in, InputFile::Open(zip_path));
  if (in.size() > kMaxPayloadSize) {
    return MakeError(ErrorCode::kLimitExceeded, zip_path.string() + " is larger than the " +
                                                    std::to_string(kMaxPayloadSize) + "-byte limit");
  }

  SessionKey session;  // its key is wiped however this returns
  session.key = crypto::SecretBytes(Bytes(kAesKeySize));
  AIRLOCK_TRY(crypto::RandomFill(session.key.mutable_bytes()));
  AIRLOCK_TRY(crypto::RandomFill(session.iv));
  // The key block first: a key store that refuses (suspended key, denied) fails before the payload.
  AIRLOCK_ASSIGN_OR_RETURN(Bytes key_block, SignedBlock(signer, session.key.span(), "session key"));

  AIRLOCK_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(out_path, 0644, Overwrite::kNever));
  AIRLOCK_ASSIGN_OR_RETURN(CryptStats stats, Crypt(Direction::kEncrypt, in, session, out));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes checksum_block,
                           SignedBlock(signer, stats.plain_sha256, "checksum"));
  AIRLOCK_TRY(out.Commit());

  EncryptResult result;
  result.session_key = crypto::Base64Encode(session.iv) + ":" + crypto::Base64Encode(key_block);
  result.checksum = HexEncode(checksum_block);
  result.sha256 = std::move(stats.plain_sha256);
  result.plain_size = stats.in_size;
  result.encrypted_size = stats.out_size;
  return result;
}

Result<DecryptResult> DecryptFile(const fs::path& encrypted_path, const crypto::PublicKey& public_key,
                                  std::string_view session_key, std::string_view checksum,
                                  const fs::path& out_path) {
  // Both text fields before the payload is touched. The session key goes first so that a wrong
  // public key is reported as such ("session key does not decrypt") rather than as a checksum error.
  AIRLOCK_ASSIGN_OR_RETURN(SessionKey session, ParseSessionKey(session_key, public_key));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes expected, ParseChecksum(checksum, public_key));
  return DecryptVerified(encrypted_path, session, expected, out_path);
}

std::string KeyId(const crypto::PublicKey& public_key) {
  constexpr size_t kKeyIdLength = 20;
  std::string body;
  std::istringstream pem(public_key.ToPkcs1Pem());
  for (std::string line; std::getline(pem, line);) {
    if (line.rfind("-----", 0) == 0) continue;
    for (char c : line) {
      if (!std::isspace(static_cast<unsigned char>(c))) body.push_back(c);
    }
  }
  return body.substr(0, std::min(body.size(), kKeyIdLength));
}

}  // namespace airlock::bundle::capgo
