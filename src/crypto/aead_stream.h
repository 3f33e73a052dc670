// Streaming authenticated encryption: AES-256-GCM over fixed-size chunks, in constant memory.
//
// Stream = nonce_prefix (7 random bytes) || chunk_0 || ... || chunk_n
// chunk_i = AES-256-GCM(key, nonce_i, aad) of up to chunk_size plaintext bytes || 16-byte tag
// nonce_i = nonce_prefix (7) || i as uint32 big-endian (4) || final flag (1: 0x01 on the last chunk, else 0x00)
// Every chunk but the last holds exactly chunk_size plaintext bytes; the last holds 0..chunk_size bytes
// (it is empty only when the whole plaintext is empty). So truncation at a chunk boundary (no final flag),
// reordering (counter), and data appended after the final chunk are all detected.
// At most 2^32 chunks per stream.
#ifndef AIRLOCK_CRYPTO_AEAD_STREAM_H_
#define AIRLOCK_CRYPTO_AEAD_STREAM_H_

#include <cstdint>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/ossl.h"

namespace airlock::crypto {

inline constexpr size_t kStreamKeySize = 32;
inline constexpr size_t kStreamNoncePrefixSize = 7;
inline constexpr size_t kStreamTagSize = 16;
inline constexpr size_t kDefaultChunkSize = 64 * 1024;
inline constexpr size_t kMaxChunkSize = 16 * 1024 * 1024;

// Size of the whole stream for a plaintext of `plaintext_size` bytes.
uint64_t StreamCiphertextSize(uint64_t plaintext_size, size_t chunk_size = kDefaultChunkSize);

// Encrypts a stream. Output is appended to the caller's buffer; each Update appends only whole chunks, so
// the encryptor holds at most one chunk of plaintext. Not thread-safe; movable.
class StreamEncryptor {
 public:
  // kInvalidArgument if the key is not 32 bytes or chunk_size is 0 or above kMaxChunkSize.
  // The nonce prefix comes from the CSPRNG (kCrypto if it fails).
  static Result<StreamEncryptor> Create(ByteSpan key, ByteSpan aad,
                                        size_t chunk_size = kDefaultChunkSize);
  Result<void> Update(ByteSpan plaintext, Bytes& out);
  // Emits the final chunk. The encryptor cannot be used afterwards.
  Result<void> Finish(Bytes& out);

 private:
  StreamEncryptor() = default;
  Result<void> EmitChunk(ByteSpan plaintext, bool final_chunk, Bytes& out);
  EvpCipherCtxPtr ctx_;
  Bytes aad_;
  Bytes pending_;
  uint8_t prefix_[kStreamNoncePrefixSize] = {};
  size_t chunk_size_ = 0;
  uint64_t counter_ = 0;
  bool started_ = false;
  bool finished_ = false;
};

// Decrypts a stream. Plaintext is released chunk by chunk after that chunk's tag verifies. Errors:
//   kDecryptFailed  a chunk does not authenticate (tampered, reordered, wrong key or aad)
//   kTruncated      the stream ends before its final chunk
//   kTrailingData   data follows the final chunk
// After an error the decryptor is unusable, and the caller must discard everything it released.
class StreamDecryptor {
 public:
  static Result<StreamDecryptor> Create(ByteSpan key, ByteSpan aad,
                                        size_t chunk_size = kDefaultChunkSize);
  Result<void> Update(ByteSpan ciphertext, Bytes& out);
  Result<void> Finish(Bytes& out);

 private:
  StreamDecryptor() = default;
  Result<void> OpenChunk(ByteSpan chunk, bool final_chunk, Bytes& out);
  EvpCipherCtxPtr ctx_;
  Bytes aad_;
  Bytes pending_;
  uint8_t prefix_[kStreamNoncePrefixSize] = {};
  size_t prefix_have_ = 0;
  size_t chunk_size_ = 0;
  uint64_t counter_ = 0;
  bool failed_ = false;
  bool finished_ = false;
};

}  // namespace airlock::crypto

#endif  // AIRLOCK_CRYPTO_AEAD_STREAM_H_
