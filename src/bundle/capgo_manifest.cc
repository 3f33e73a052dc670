// Capgo manifest (partial) updates: one file of a release, encrypted on its own (capgo.h).
#include <brotli/decode.h>
#include <brotli/encode.h>
#include <openssl/evp.h>

#include <memory>
#include <string>

#include "bundle/capgo.h"
#include "bundle/capgo_internal.h"
#include "bundle/manifest.h"
#include "common/file.h"
#include "crypto/hash.h"
#include "crypto/ossl.h"

namespace airlock::bundle::capgo {

namespace fs = std::filesystem;

namespace {

bool IsBrotliName(std::string_view name) {
  return name.size() > 3 && name.substr(name.size() - 3) == ".br";
}

// AES-128-CBC with PKCS#7 padding over `in`, with the session's key and IV.
Result<Bytes> Cbc(bool encrypt, ByteSpan in, const SessionKey& session) {
  if (session.key.size() != kAesKeySize) {
    return MakeError(ErrorCode::kInternal, "session key is not an AES-128 key");
  }
  crypto::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_CipherInit_ex(ctx.get(), EVP_aes_128_cbc(), nullptr, session.key.get().data(),
                                session.iv.data(), encrypt ? 1 : 0) != 1) {
    return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "cannot set up AES-128-CBC"));
  }
  EVP_CIPHER_CTX_set_padding(ctx.get(), 1);
  Bytes out(in.size() + 2 * kIvSize);
  int n = 0, tail = 0;
  if (EVP_CipherUpdate(ctx.get(), out.data(), &n, in.data(), static_cast<int>(in.size())) != 1) {
    return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "AES-128-CBC failed"));
  }
  if (EVP_CipherFinal_ex(ctx.get(), out.data() + n, &tail) != 1) {
    if (encrypt) return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "AES-128-CBC failed"));
    crypto::ClearOsslErrors();
    return MakeError(ErrorCode::kDecryptFailed,
                     "manifest file has bad PKCS#7 padding: it was tampered with or truncated, or "
                     "the session key belongs to another bundle");
  }
  out.resize(static_cast<size_t>(n + tail));
  return out;
}

Result<Bytes> BrotliDecompress(ByteSpan in, std::string_view name) {
  std::unique_ptr<BrotliDecoderState, decltype(&BrotliDecoderDestroyInstance)> state(
      BrotliDecoderCreateInstance(nullptr, nullptr, nullptr), &BrotliDecoderDestroyInstance);
  if (!state) return MakeError(ErrorCode::kInternal, "BrotliDecoderCreateInstance failed");
  Bytes out;
  Bytes buf(64 * 1024);
  size_t avail_in = in.size();
  const uint8_t* next_in = in.data();
  while (true) {
    size_t avail_out = buf.size();
    uint8_t* next_out = buf.data();
    const BrotliDecoderResult r = BrotliDecoderDecompressStream(state.get(), &avail_in, &next_in,
                                                                &avail_out, &next_out, nullptr);
    out.insert(out.end(), buf.data(), next_out);
    if (out.size() > kMaxManifestFileSize) {
      return MakeError(ErrorCode::kLimitExceeded, std::string(name) + " decompresses past " +
                                                      std::to_string(kMaxManifestFileSize) +
                                                      " bytes");
    }
    if (r == BROTLI_DECODER_RESULT_SUCCESS) {
      if (avail_in != 0) {
        return MakeError(ErrorCode::kMalformed,
                         std::string(name) + ": data after the brotli stream");
      }
      return out;
    }
    if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) continue;
    return MakeError(ErrorCode::kMalformed,
                     std::string(name) + " is not a complete brotli stream" +
                         (r == BROTLI_DECODER_RESULT_ERROR
                              ? std::string(": ") +
                                    BrotliDecoderErrorString(BrotliDecoderGetErrorCode(state.get()))
                              : std::string()));
  }
}

}  // namespace

Result<ManifestFile> EncryptManifestFile(const fs::path& plain_path, std::string_view name,
                                         const SessionKey& session, const CapgoSigner& signer,
                                         const fs::path& out_path) {
  AIRLOCK_TRY(ValidateBundlePath(name));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes plain, ReadFile(plain_path, kMaxManifestFileSize));
  ManifestFile file;
  file.file_name = std::string(name);
  const Bytes digest = crypto::Sha256(plain);
  ByteSpan payload = plain;
  Bytes compressed;
  if (plain.size() >= kBrotliMinSize) {
    compressed.resize(BrotliEncoderMaxCompressedSize(plain.size()));
    size_t size = compressed.size();
    if (BrotliEncoderCompress(BROTLI_DEFAULT_QUALITY, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC,
                              plain.size(), plain.data(), &size,
                              compressed.data()) == BROTLI_TRUE &&
        size < plain.size()) {
      compressed.resize(size);
      payload = compressed;
      file.file_name += ".br";
    }
  }
  AIRLOCK_ASSIGN_OR_RETURN(Bytes encrypted, Cbc(true, payload, session));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes block, internal::SignedBlock(signer, digest, "file_hash"));
  file.file_hash = HexEncode(block);
  file.encrypted_size = encrypted.size();
  AIRLOCK_TRY(WriteFileAtomic(out_path, encrypted, 0644, Overwrite::kNever));
  return file;
}

Result<DecryptResult> DecryptManifestFile(const fs::path& encrypted_path,
                                          const crypto::PublicKey& public_key,
                                          const SessionKey& session, std::string_view file_name,
                                          std::string_view file_hash, const fs::path& out_path) {
  AIRLOCK_ASSIGN_OR_RETURN(Bytes expected, ParseChecksum(file_hash, public_key));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes encrypted, ReadFile(encrypted_path, kMaxManifestFileSize));
  if (encrypted.empty() || encrypted.size() % 16 != 0) {
    return MakeError(ErrorCode::kMalformed, encrypted_path.string() +
                                                " is not AES-CBC ciphertext (" +
                                                std::to_string(encrypted.size()) +
                                                " bytes, not a positive multiple of 16)");
  }
  AIRLOCK_ASSIGN_OR_RETURN(Bytes plain, Cbc(false, encrypted, session));
  if (IsBrotliName(file_name)) {
    AIRLOCK_ASSIGN_OR_RETURN(plain, BrotliDecompress(plain, file_name));
  }
  Bytes digest = crypto::Sha256(plain);
  if (!ConstantTimeEqual(digest, expected)) {
    return MakeError(ErrorCode::kHashMismatch,
                     "checksum mismatch: " + std::string(file_name) + " has sha256 " +
                         HexEncode(digest) + " but its signed file_hash is " + HexEncode(expected));
  }
  AIRLOCK_TRY(WriteFileAtomic(out_path, plain, 0644, Overwrite::kNever));
  return DecryptResult{plain.size(), std::move(digest)};
}

}  // namespace airlock::bundle::capgo
