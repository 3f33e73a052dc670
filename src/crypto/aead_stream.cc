#include "crypto/aead_stream.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "crypto/random.h"

namespace airlock::crypto {

namespace {

constexpr size_t kNonceSize = 12;
constexpr uint64_t kMaxCounter = 0xFFFFFFFFull;  // 2^32 chunks: counters 0 .. 2^32-1

static_assert(kMaxChunkSize + kStreamTagSize < static_cast<size_t>(INT_MAX),
              "chunk lengths are passed to OpenSSL as int");

void MakeNonce(const uint8_t* prefix, uint64_t counter, bool final_chunk, uint8_t* nonce) {
  std::memcpy(nonce, prefix, kStreamNoncePrefixSize);
  nonce[7] = static_cast<uint8_t>(counter >> 24);
  nonce[8] = static_cast<uint8_t>(counter >> 16);
  nonce[9] = static_cast<uint8_t>(counter >> 8);
  nonce[10] = static_cast<uint8_t>(counter);
  nonce[11] = final_chunk ? 0x01 : 0x00;
}

// Grows `out` geometrically so that `extra` more bytes fit: callers append chunk after chunk to one
// buffer, and an exact reserve per call would copy the whole buffer every time.
void ReserveMore(Bytes& out, size_t extra) {
  size_t need = out.size() + extra;
  if (need > out.capacity()) out.reserve(std::max(need, 2 * out.capacity()));
}

Result<void> ValidateParams(ByteSpan key, size_t chunk_size) {
  if (key.size() != kStreamKeySize) {
    return MakeError(ErrorCode::kInvalidArgument, "stream key must be 32 bytes");
  }
  if (chunk_size == 0 || chunk_size > kMaxChunkSize) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "chunk size " + std::to_string(chunk_size) + " is outside 1..16 MiB");
  }
  return {};
}

// One cipher context per stream, keyed once: the AES key schedule and GHASH tables are computed here and
// reused for every chunk (each chunk only sets a new IV).
Result<EvpCipherCtxPtr> KeyedContext(ByteSpan key, bool encrypt) {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nullptr,
                                encrypt ? 1 : 0) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot set up AES-256-GCM"));
  }
  return ctx;
}

}  // namespace

uint64_t StreamCiphertextSize(uint64_t plaintext_size, size_t chunk_size) {
  if (chunk_size == 0) return 0;
  uint64_t chunks = plaintext_size == 0 ? 1 : (plaintext_size + chunk_size - 1) / chunk_size;
  return kStreamNoncePrefixSize + plaintext_size + chunks * kStreamTagSize;
}

// ---- StreamEncryptor ----

Result<StreamEncryptor> StreamEncryptor::Create(ByteSpan key, ByteSpan aad, size_t chunk_size) {
  AIRLOCK_TRY(ValidateParams(key, chunk_size));
  StreamEncryptor e;
  AIRLOCK_ASSIGN_OR_RETURN(e.ctx_, KeyedContext(key, /*encrypt=*/true));
  AIRLOCK_TRY(RandomFill(e.prefix_));
  e.aad_.assign(aad.begin(), aad.end());
  e.chunk_size_ = chunk_size;
  e.pending_.reserve(chunk_size);
  return e;
}

Result<void> StreamEncryptor::EmitChunk(ByteSpan plaintext, bool final_chunk, Bytes& out) {
  if (counter_ > kMaxCounter) {
    finished_ = true;
    return MakeError(ErrorCode::kLimitExceeded, "stream has more than 2^32 chunks");
  }
  uint8_t nonce[kNonceSize];
  MakeNonce(prefix_, counter_, final_chunk, nonce);
  EVP_CIPHER_CTX* ctx = ctx_.get();
  int len = 0;
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) != 1 ||
      (!aad_.empty() &&
       EVP_EncryptUpdate(ctx, nullptr, &len, aad_.data(), static_cast<int>(aad_.size())) != 1)) {
    finished_ = true;
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot start chunk"));
  }
  const size_t start = out.size();
  out.resize(start + plaintext.size() + kStreamTagSize);
  uint8_t* dst = out.data() + start;
  int n = 0;
  if ((!plaintext.empty() &&
       EVP_EncryptUpdate(ctx, dst, &n, plaintext.data(), static_cast<int>(plaintext.size())) != 1) ||
      EVP_EncryptFinal_ex(ctx, dst + n, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kStreamTagSize),
                          dst + plaintext.size()) != 1) {
    out.resize(start);
    finished_ = true;
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "chunk encryption failed"));
  }
  ++counter_;
  return {};
}

Result<void> StreamEncryptor::Update(ByteSpan plaintext, Bytes& out) {
  if (finished_) return MakeError(ErrorCode::kInvalidArgument, "stream encryptor already finished");
  const size_t total = pending_.size() + plaintext.size();
  ReserveMore(out, (started_ ? 0 : kStreamNoncePrefixSize) +
                       (total / chunk_size_ + 1) * kStreamTagSize + total);
  if (!started_) {
    out.insert(out.end(), prefix_, prefix_ + kStreamNoncePrefixSize);
    started_ = true;
  }
  // A chunk is emitted only once data beyond it arrives, because only then is it known not to be the
  // last. Whole chunks are encrypted straight from the caller's buffer; only a tail is copied.
  while (!plaintext.empty()) {
    if (pending_.size() == chunk_size_) {
      AIRLOCK_TRY(EmitChunk(pending_, /*final_chunk=*/false, out));
      pending_.clear();
    }
    if (pending_.empty()) {
      while (plaintext.size() > chunk_size_) {
        AIRLOCK_TRY(EmitChunk(plaintext.first(chunk_size_), /*final_chunk=*/false, out));
        plaintext = plaintext.subspan(chunk_size_);
      }
    }
    size_t take = std::min(chunk_size_ - pending_.size(), plaintext.size());
    pending_.insert(pending_.end(), plaintext.begin(), plaintext.begin() + take);
    plaintext = plaintext.subspan(take);
  }
  return {};
}

Result<void> StreamEncryptor::Finish(Bytes& out) {
  if (finished_) return MakeError(ErrorCode::kInvalidArgument, "stream encryptor already finished");
  ReserveMore(out, (started_ ? 0 : kStreamNoncePrefixSize) + pending_.size() + kStreamTagSize);
  if (!started_) {
    out.insert(out.end(), prefix_, prefix_ + kStreamNoncePrefixSize);
    started_ = true;
  }
  auto emitted = EmitChunk(pending_, /*final_chunk=*/true, out);
  OPENSSL_cleanse(pending_.data(), pending_.size());
  pending_.clear();
  finished_ = true;
  return emitted;
}

// ---- StreamDecryptor ----

Result<StreamDecryptor> StreamDecryptor::Create(ByteSpan key, ByteSpan aad, size_t chunk_size) {
  AIRLOCK_TRY(ValidateParams(key, chunk_size));
  StreamDecryptor d;
  AIRLOCK_ASSIGN_OR_RETURN(d.ctx_, KeyedContext(key, /*encrypt=*/false));
  d.aad_.assign(aad.begin(), aad.end());
  d.chunk_size_ = chunk_size;
  d.pending_.reserve(chunk_size + kStreamTagSize);
  return d;
}

// Opens one sealed chunk (ciphertext || tag) as chunk number counter_, appending its plaintext to `out`
// only if it authenticates. Returns kDecryptFailed otherwise (the caller decides what that means) and
// leaves `out` and counter_ unchanged.
Result<void> StreamDecryptor::OpenChunk(ByteSpan chunk, bool final_chunk, Bytes& out) {
  if (counter_ > kMaxCounter) {
    return MakeError(ErrorCode::kLimitExceeded, "stream has more than 2^32 chunks");
  }
  const size_t pt_size = chunk.size() - kStreamTagSize;
  uint8_t nonce[kNonceSize];
  MakeNonce(prefix_, counter_, final_chunk, nonce);
  uint8_t tag[kStreamTagSize];
  std::memcpy(tag, chunk.data() + pt_size, kStreamTagSize);
  EVP_CIPHER_CTX* ctx = ctx_.get();
  int len = 0;
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) != 1 ||
      (!aad_.empty() &&
       EVP_DecryptUpdate(ctx, nullptr, &len, aad_.data(), static_cast<int>(aad_.size())) != 1)) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot start chunk"));
  }
  const size_t start = out.size();
  out.resize(start + pt_size);
  uint8_t* dst = out.data() + start;
  int n = 0;
  if ((pt_size != 0 &&
       EVP_DecryptUpdate(ctx, dst, &n, chunk.data(), static_cast<int>(pt_size)) != 1) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kStreamTagSize), tag) != 1) {
    out.resize(start);
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "chunk decryption failed"));
  }
  if (EVP_DecryptFinal_ex(ctx, dst + n, &len) != 1) {
    // Unauthenticated plaintext never leaves: drop what DecryptUpdate wrote.
    out.resize(start);
    ClearOsslErrors();
    return MakeError(ErrorCode::kDecryptFailed, "chunk failed authentication");
  }
  ++counter_;
  return {};
}

Result<void> StreamDecryptor::Update(ByteSpan ciphertext, Bytes& out) {
  if (failed_) return MakeError(ErrorCode::kInvalidArgument, "stream decryptor already failed");
  if (finished_) return MakeError(ErrorCode::kInvalidArgument, "stream decryptor already finished");
  if (prefix_have_ < kStreamNoncePrefixSize) {
    size_t take = std::min(kStreamNoncePrefixSize - prefix_have_, ciphertext.size());
    std::memcpy(prefix_ + prefix_have_, ciphertext.data(), take);
    prefix_have_ += take;
    ciphertext = ciphertext.subspan(take);
  }
  const size_t unit = chunk_size_ + kStreamTagSize;
  ReserveMore(out, pending_.size() + ciphertext.size());

  // Like the encryptor: a full chunk is opened as non-final only once more data shows it is not the last.
  auto open_non_final = [&](ByteSpan chunk) -> Result<void> {
    auto opened = OpenChunk(chunk, /*final_chunk=*/false, out);
    if (opened) return {};
    failed_ = true;
    if (opened.error().code() != ErrorCode::kDecryptFailed) return opened;
    // Distinguish a final chunk followed by more data from a chunk that is simply corrupt.
    if (OpenChunk(chunk, /*final_chunk=*/true, out)) {
      out.resize(out.size() - (chunk.size() - kStreamTagSize));
      return MakeError(ErrorCode::kTrailingData, "data after the final chunk");
    }
    return MakeError(ErrorCode::kDecryptFailed,
                     "chunk " + std::to_string(counter_) + " failed authentication");
  };

  while (!ciphertext.empty()) {
    if (pending_.size() == unit) {
      AIRLOCK_TRY(open_non_final(pending_));
      pending_.clear();
    }
    if (pending_.empty()) {
      while (ciphertext.size() > unit) {
        AIRLOCK_TRY(open_non_final(ciphertext.first(unit)));
        ciphertext = ciphertext.subspan(unit);
      }
    }
    size_t take = std::min(unit - pending_.size(), ciphertext.size());
    pending_.insert(pending_.end(), ciphertext.begin(), ciphertext.begin() + take);
    ciphertext = ciphertext.subspan(take);
  }
  return {};
}

Result<void> StreamDecryptor::Finish(Bytes& out) {
  if (failed_) return MakeError(ErrorCode::kInvalidArgument, "stream decryptor already failed");
  if (finished_) return MakeError(ErrorCode::kInvalidArgument, "stream decryptor already finished");
  finished_ = true;
  if (prefix_have_ < kStreamNoncePrefixSize || pending_.size() < kStreamTagSize) {
    failed_ = true;
    return MakeError(ErrorCode::kTruncated, "stream ends before its final chunk");
  }
  ReserveMore(out, pending_.size());
  auto opened = OpenChunk(pending_, /*final_chunk=*/true, out);
  if (opened) {
    pending_.clear();
    return {};
  }
  failed_ = true;
  if (opened.error().code() != ErrorCode::kDecryptFailed) return opened;
  if (OpenChunk(pending_, /*final_chunk=*/false, out)) {
    out.resize(out.size() - (pending_.size() - kStreamTagSize));
    return MakeError(ErrorCode::kTruncated, "stream ends before its final chunk");
  }
  return MakeError(ErrorCode::kDecryptFailed,
                   "chunk " + std::to_string(counter_) + " failed authentication");
}

}  // namespace airlock::crypto
