#include "crypto/hash.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

namespace airlock::crypto {

namespace {
struct EvpMacFree {
  void operator()(EVP_MAC* p) const { EVP_MAC_free(p); }
};
struct EvpMacCtxFree {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};

Bytes OneShot(const EVP_MD* md, ByteSpan data) {
  Bytes out(static_cast<size_t>(EVP_MD_get_size(md)));
  unsigned int len = 0;
  // EVP_Digest fails only on allocation failure; treat that as fatal rather than return a bad digest.
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1) std::abort();
  return out;
}
}  // namespace

Bytes Sha256(ByteSpan data) { return OneShot(EVP_sha256(), data); }

Result<Bytes> Hmac(std::string_view digest, ByteSpan key, ByteSpan message) {
  std::unique_ptr<EVP_MAC, EvpMacFree> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return tl::unexpected(OsslError(ErrorCode::kCrypto, "HMAC unavailable"));
  std::unique_ptr<EVP_MAC_CTX, EvpMacCtxFree> ctx(EVP_MAC_CTX_new(mac.get()));
  if (!ctx) return tl::unexpected(OsslError(ErrorCode::kCrypto, "HMAC context"));
  // OSSL_PARAM wants a mutable char*; the digest name is only read.
  std::string name(digest);
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, name.data(), 0),
                         OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), message.data(), message.size()) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "HMAC"));
  }
  Bytes out(EVP_MAX_MD_SIZE);
  size_t out_len = 0;
  if (EVP_MAC_final(ctx.get(), out.data(), &out_len, out.size()) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "HMAC final"));
  }
  out.resize(out_len);
  return out;
}
Bytes Sha512(ByteSpan data) { return OneShot(EVP_sha512(), data); }

Hasher::Hasher(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), md, nullptr) != 1) std::abort();
}
Hasher Hasher::Sha256() { return Hasher(EVP_sha256()); }
Hasher Hasher::Sha512() { return Hasher(EVP_sha512()); }

void Hasher::Update(ByteSpan data) {
  if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1) std::abort();
}

Bytes Hasher::Finish() {
  Bytes out(static_cast<size_t>(EVP_MD_CTX_get_size(ctx_.get())));
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), out.data(), &len) != 1) std::abort();
  return out;
}

Result<Bytes> Sha256File(const std::filesystem::path& path, uint64_t* size_out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return MakeError(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                     "cannot open " + path.string() + ": " + std::strerror(err));
  }
  Hasher h = Hasher::Sha256();
  Bytes buf(1 << 20);
  uint64_t total = 0;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return MakeError(ErrorCode::kIo, "cannot read " + path.string() + ": " + std::strerror(err));
    }
    if (n == 0) break;
    h.Update(ByteSpan(buf.data(), static_cast<size_t>(n)));
    total += static_cast<uint64_t>(n);
  }
  ::close(fd);
  if (size_out) *size_out = total;
  return h.Finish();
}

Result<Bytes> HkdfSha256(ByteSpan ikm, ByteSpan salt, ByteSpan info, size_t length) {
  if (length == 0 || length > 255 * kSha256Size) {
    return MakeError(ErrorCode::kInvalidArgument, "HKDF output length out of range");
  }
  std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr),
                                                          &EVP_KDF_free);
  if (!kdf) return tl::unexpected(OsslError(ErrorCode::kCrypto, "HKDF unavailable"));
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()),
                                                                  &EVP_KDF_CTX_free);
  if (!ctx) return tl::unexpected(OsslError(ErrorCode::kCrypto, "HKDF context"));
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  int n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(ikm.data()), ikm.size());
  // An empty salt or info is passed by leaving the parameter out: OpenSSL 3.0 rejects an empty salt
  // whose pointer is null (as an empty span's is), and without a salt it uses a zero-length HMAC key,
  // which equals RFC 5869's default of HashLen zero bytes.
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();
  Bytes out(length);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "HKDF derive failed"));
  }
  return out;
}

}  // namespace airlock::crypto
