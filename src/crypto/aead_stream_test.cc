#include "crypto/aead_stream.h"

#include <openssl/crypto.h>

#include <gtest/gtest.h>

#include "crypto/crypto_test_util.h"
#include "crypto/random.h"

namespace airlock::crypto {
namespace {

using test_util::Hex;

constexpr size_t kSmallChunk = 64;
constexpr size_t kUnit = kSmallChunk + kStreamTagSize;  // one sealed small chunk

const Bytes kKey = Bytes(32, 0x11);
const Bytes kAad = ToBytes("app 1.0.0");

Bytes Pattern(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 31 + 7);
  return b;
}

// Feeds `data` to `update` in pieces whose sizes cycle through `splits`.
template <typename F>
void Feed(ByteSpan data, const std::vector<size_t>& splits, F update) {
  size_t off = 0, i = 0;
  while (off < data.size()) {
    size_t n = std::min(splits[i++ % splits.size()], data.size() - off);
    update(data.subspan(off, n));
    off += n;
  }
}

Bytes Encrypt(ByteSpan plain, size_t chunk, const std::vector<size_t>& splits = {1 << 30},
              ByteSpan key = kKey, ByteSpan aad = kAad) {
  auto enc = StreamEncryptor::Create(key, aad, chunk);
  EXPECT_TRUE(enc);
  Bytes out;
  Feed(plain, splits, [&](ByteSpan piece) { EXPECT_TRUE(enc->Update(piece, out)); });
  EXPECT_TRUE(enc->Finish(out));
  return out;
}

// Decrypts; on failure returns the error.
Result<Bytes> Decrypt(ByteSpan stream, size_t chunk, const std::vector<size_t>& splits = {1 << 30},
                      ByteSpan key = kKey, ByteSpan aad = kAad) {
  AIRLOCK_ASSIGN_OR_RETURN(StreamDecryptor dec, StreamDecryptor::Create(key, aad, chunk));
  Bytes out;
  size_t off = 0, i = 0;
  while (off < stream.size()) {
    size_t n = std::min(splits[i++ % splits.size()], stream.size() - off);
    AIRLOCK_TRY(dec.Update(stream.subspan(off, n), out));
    off += n;
  }
  AIRLOCK_TRY(dec.Finish(out));
  return out;
}

ErrorCode DecryptError(ByteSpan stream, size_t chunk = kSmallChunk, ByteSpan key = kKey,
                       ByteSpan aad = kAad) {
  auto r = Decrypt(stream, chunk, {1 << 30}, key, aad);
  EXPECT_FALSE(r) << "stream unexpectedly decrypted";
  return r ? ErrorCode::kInternal : r.error().code();
}

// ---- The primitive: NIST / McGrew-Viega GCM spec test cases 13-16 (AES-256), through EVP directly ----

struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* plaintext;
  const char* aad;
  const char* ciphertext;
  const char* tag;
};

constexpr const char* kGcmKey15 = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
constexpr const char* kGcmPlain15 =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525"
    "b16aedf5aa0de657ba637b391aafd255";
constexpr const char* kGcmCipher15 =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838"
    "c5f61e6393ba7a0abcc9f662898015ad";

const GcmVector kGcmVectors[] = {
    {"TC13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"TC14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"TC15", kGcmKey15, "cafebabefacedbaddecaf888", kGcmPlain15, "", kGcmCipher15,
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"TC16", kGcmKey15, "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525"
     "b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838"
     "c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(AesGcm, MatchesGcmSpecTestCases13To16) {
  for (const GcmVector& v : kGcmVectors) {
    SCOPED_TRACE(v.name);
    Bytes key = Hex(v.key), iv = Hex(v.iv), pt = Hex(v.plaintext), aad = Hex(v.aad);
    // Encrypt.
    EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    ASSERT_EQ(EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), iv.data()), 1);
    int len = 0;
    if (!aad.empty()) {
      ASSERT_EQ(EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())), 1);
    }
    Bytes ct(pt.size() + 16);
    int n = 0;
    if (!pt.empty()) {
      ASSERT_EQ(EVP_EncryptUpdate(ctx.get(), ct.data(), &n, pt.data(), static_cast<int>(pt.size())), 1);
    }
    ASSERT_EQ(EVP_EncryptFinal_ex(ctx.get(), ct.data() + n, &len), 1);
    Bytes tag(16);
    ASSERT_EQ(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, tag.data()), 1);
    ct.resize(pt.size());
    EXPECT_EQ(HexEncode(ct), v.ciphertext);
    EXPECT_EQ(HexEncode(tag), v.tag);

    // Decrypt with the keyed-once, IV-per-message pattern the stream uses.
    EvpCipherCtxPtr dctx(EVP_CIPHER_CTX_new());
    ASSERT_EQ(EVP_DecryptInit_ex(dctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nullptr), 1);
    for (int round = 0; round < 2; ++round) {
      ASSERT_EQ(EVP_DecryptInit_ex(dctx.get(), nullptr, nullptr, nullptr, iv.data()), 1);
      if (!aad.empty()) {
        ASSERT_EQ(EVP_DecryptUpdate(dctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())),
                  1);
      }
      Bytes back(pt.size() + 16);
      n = 0;
      if (!ct.empty()) {
        ASSERT_EQ(
            EVP_DecryptUpdate(dctx.get(), back.data(), &n, ct.data(), static_cast<int>(ct.size())), 1);
      }
      ASSERT_EQ(EVP_CIPHER_CTX_ctrl(dctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag.data()), 1);
      ASSERT_EQ(EVP_DecryptFinal_ex(dctx.get(), back.data() + n, &len), 1);
      back.resize(pt.size());
      EXPECT_EQ(back, pt);
    }
  }
}

// ---- The stream construction ----

TEST(StreamCiphertextSize, CountsPrefixAndOneTagPerChunk) {
  EXPECT_EQ(StreamCiphertextSize(0, 64), 7u + 16u);
  EXPECT_EQ(StreamCiphertextSize(1, 64), 7u + 1u + 16u);
  EXPECT_EQ(StreamCiphertextSize(64, 64), 7u + 64u + 16u);
  EXPECT_EQ(StreamCiphertextSize(65, 64), 7u + 65u + 32u);
  EXPECT_EQ(StreamCiphertextSize(192, 64), 7u + 192u + 48u);
  EXPECT_EQ(StreamCiphertextSize(1 << 20), 7u + (1u << 20) + 16u * 16u);
}

TEST(Stream, MatchesTheDocumentedConstruction) {
  // Decrypt chunk by chunk with plain EVP, from the layout in aead_stream.h.
  Bytes plain = Pattern(2 * kSmallChunk + 5);
  Bytes stream = Encrypt(plain, kSmallChunk);
  ASSERT_EQ(stream.size(), StreamCiphertextSize(plain.size(), kSmallChunk));
  const size_t sizes[] = {kSmallChunk, kSmallChunk, 5};
  size_t off = kStreamNoncePrefixSize;
  Bytes recovered;
  for (uint32_t i = 0; i < 3; ++i) {
    uint8_t nonce[12];
    std::copy(stream.begin(), stream.begin() + 7, nonce);
    nonce[7] = 0;
    nonce[8] = 0;
    nonce[9] = 0;
    nonce[10] = static_cast<uint8_t>(i);
    nonce[11] = i == 2 ? 1 : 0;
    EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    ASSERT_EQ(EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, kKey.data(), nonce), 1);
    int len = 0;
    ASSERT_EQ(EVP_DecryptUpdate(ctx.get(), nullptr, &len, kAad.data(), static_cast<int>(kAad.size())), 1);
    Bytes pt(sizes[i]);
    ASSERT_EQ(EVP_DecryptUpdate(ctx.get(), pt.data(), &len, stream.data() + off,
                                static_cast<int>(sizes[i])),
              1);
    ASSERT_EQ(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, stream.data() + off + sizes[i]), 1);
    ASSERT_EQ(EVP_DecryptFinal_ex(ctx.get(), pt.data() + len, &len), 1) << "chunk " << i;
    recovered.insert(recovered.end(), pt.begin(), pt.end());
    off += sizes[i] + 16;
  }
  EXPECT_EQ(off, stream.size());
  EXPECT_EQ(recovered, plain);
}

TEST(Stream, RoundTripsAllBoundarySizesWithOddSplits) {
  const std::vector<std::vector<size_t>> split_sets = {{1 << 30}, {1}, {3, 7, 64, 65, 1}, {63}, {81, 80}};
  for (size_t size : {size_t{0}, size_t{1}, kSmallChunk - 1, kSmallChunk, kSmallChunk + 1,
                      3 * kSmallChunk, 3 * kSmallChunk + 17}) {
    Bytes plain = Pattern(size);
    for (const auto& enc_splits : split_sets) {
      Bytes stream = Encrypt(plain, kSmallChunk, enc_splits);
      ASSERT_EQ(stream.size(), StreamCiphertextSize(size, kSmallChunk)) << size;
      for (const auto& dec_splits : split_sets) {
        auto back = Decrypt(stream, kSmallChunk, dec_splits);
        ASSERT_TRUE(back) << size << ": " << back.error().ToString();
        EXPECT_EQ(*back, plain) << size;
      }
    }
  }
}

TEST(Stream, RoundTripsDefaultChunkSize) {
  Bytes plain = Pattern(3 * kDefaultChunkSize + 1000);
  Bytes stream = Encrypt(plain, kDefaultChunkSize, {100000, 7, 1 << 20});
  EXPECT_EQ(stream.size(), StreamCiphertextSize(plain.size()));
  auto back = Decrypt(stream, kDefaultChunkSize, {4096, kDefaultChunkSize + 16, 1});
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(*back, plain);
  // Exactly one full final chunk.
  Bytes exact = Pattern(kDefaultChunkSize);
  auto back2 = Decrypt(Encrypt(exact, kDefaultChunkSize), kDefaultChunkSize);
  ASSERT_TRUE(back2);
  EXPECT_EQ(*back2, exact);
}

TEST(Stream, EncryptorReleasesOnlyWholeChunks) {
  auto enc = StreamEncryptor::Create(kKey, kAad, kSmallChunk);
  ASSERT_TRUE(enc);
  Bytes out;
  ASSERT_TRUE(enc->Update(Pattern(kSmallChunk), out));
  EXPECT_EQ(out.size(), kStreamNoncePrefixSize);  // a full chunk is held: it may be the last
  ASSERT_TRUE(enc->Update(Pattern(1), out));
  EXPECT_EQ(out.size(), kStreamNoncePrefixSize + kUnit);
  ASSERT_TRUE(enc->Finish(out));
  EXPECT_EQ(out.size(), kStreamNoncePrefixSize + kUnit + 1 + kStreamTagSize);
  // Finished: no further use.
  auto again = enc->Update(Pattern(1), out);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kInvalidArgument);
  auto fin = enc->Finish(out);
  ASSERT_FALSE(fin);
  EXPECT_EQ(fin.error().code(), ErrorCode::kInvalidArgument);
}

TEST(Stream, NoncePrefixIsRandomPerStream) {
  Bytes a = Encrypt(Pattern(10), kSmallChunk);
  Bytes b = Encrypt(Pattern(10), kSmallChunk);
  EXPECT_NE(Bytes(a.begin(), a.begin() + 7), Bytes(b.begin(), b.begin() + 7));
  EXPECT_NE(a, b);
}

TEST(Stream, DecryptorReleasesChunksOnlyAfterAuthentication) {
  Bytes plain = Pattern(2 * kSmallChunk + 3);
  Bytes stream = Encrypt(plain, kSmallChunk);
  auto dec = StreamDecryptor::Create(kKey, kAad, kSmallChunk);
  ASSERT_TRUE(dec);
  Bytes out;
  // Prefix + first sealed chunk: held, since it could be the final one.
  ASSERT_TRUE(dec->Update(ByteSpan(stream).first(kStreamNoncePrefixSize + kUnit), out));
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(dec->Update(ByteSpan(stream).subspan(kStreamNoncePrefixSize + kUnit, 1), out));
  EXPECT_EQ(out, Bytes(plain.begin(), plain.begin() + kSmallChunk));
  ASSERT_TRUE(dec->Update(ByteSpan(stream).subspan(kStreamNoncePrefixSize + kUnit + 1), out));
  ASSERT_TRUE(dec->Finish(out));
  EXPECT_EQ(out, plain);
}

TEST(Stream, TruncationAtChunkBoundaryIsTruncated) {
  Bytes stream = Encrypt(Pattern(3 * kSmallChunk), kSmallChunk);
  for (size_t chunks : {size_t{0}, size_t{1}, size_t{2}}) {
    Bytes cut(stream.begin(), stream.begin() + kStreamNoncePrefixSize + chunks * kUnit);
    EXPECT_EQ(DecryptError(cut), ErrorCode::kTruncated) << chunks;
  }
  // Cut inside the prefix, or to nothing.
  EXPECT_EQ(DecryptError(ByteSpan(stream).first(3)), ErrorCode::kTruncated);
  EXPECT_EQ(DecryptError(ByteSpan()), ErrorCode::kTruncated);
}

TEST(Stream, TruncationMidChunk) {
  Bytes stream = Encrypt(Pattern(3 * kSmallChunk), kSmallChunk);
  const size_t second = kStreamNoncePrefixSize + kUnit;
  // At least a tag's worth of the chunk remains: it is opened and fails authentication.
  EXPECT_EQ(DecryptError(ByteSpan(stream).first(second + 40)), ErrorCode::kDecryptFailed);
  EXPECT_EQ(DecryptError(ByteSpan(stream).first(stream.size() - 1)), ErrorCode::kDecryptFailed);
  // Fewer than 16 bytes of the chunk remain: it cannot even hold a tag.
  EXPECT_EQ(DecryptError(ByteSpan(stream).first(second + 15)), ErrorCode::kTruncated);
}

TEST(Stream, SwappedChunksFail) {
  Bytes stream = Encrypt(Pattern(3 * kSmallChunk + 5), kSmallChunk);
  Bytes swapped = stream;
  const size_t c0 = kStreamNoncePrefixSize, c1 = c0 + kUnit;
  std::swap_ranges(swapped.begin() + c0, swapped.begin() + c1, swapped.begin() + c1);
  EXPECT_EQ(DecryptError(swapped), ErrorCode::kDecryptFailed);
  // Dropping a middle chunk is also caught by the counter.
  Bytes dropped = stream;
  dropped.erase(dropped.begin() + c1, dropped.begin() + c1 + kUnit);
  EXPECT_EQ(DecryptError(dropped), ErrorCode::kDecryptFailed);
}

TEST(Stream, AppendedDataAfterFinalChunk) {
  // Final chunk full (plaintext a multiple of the chunk size): what follows it shows up as trailing data.
  Bytes full = Encrypt(Pattern(3 * kSmallChunk), kSmallChunk);
  Bytes plus_byte = full;
  plus_byte.push_back(0);
  EXPECT_EQ(DecryptError(plus_byte), ErrorCode::kTrailingData);
  Bytes plus_chunk = full;
  plus_chunk.insert(plus_chunk.end(), full.begin() + 7, full.begin() + 7 + kUnit);
  EXPECT_EQ(DecryptError(plus_chunk), ErrorCode::kTrailingData);

  // Final chunk short: the appended bytes merge into it, so it no longer authenticates.
  Bytes partial = Encrypt(Pattern(2 * kSmallChunk + 10), kSmallChunk);
  Bytes p_byte = partial;
  p_byte.push_back(0);
  EXPECT_EQ(DecryptError(p_byte), ErrorCode::kDecryptFailed);
  Bytes p_chunk = partial;
  p_chunk.insert(p_chunk.end(), partial.begin() + 7, partial.begin() + 7 + kUnit);
  EXPECT_EQ(DecryptError(p_chunk), ErrorCode::kDecryptFailed);

  // An empty stream followed by anything.
  Bytes empty = Encrypt(ByteSpan(), kSmallChunk);
  empty.push_back(1);
  EXPECT_EQ(DecryptError(empty), ErrorCode::kDecryptFailed);
}

TEST(Stream, WrongKeyOrAadFails) {
  for (size_t size : {size_t{0}, size_t{10}, 3 * kSmallChunk}) {
    Bytes stream = Encrypt(Pattern(size), kSmallChunk);
    Bytes other_key = kKey;
    other_key[0] ^= 1;
    EXPECT_EQ(DecryptError(stream, kSmallChunk, other_key), ErrorCode::kDecryptFailed) << size;
    EXPECT_EQ(DecryptError(stream, kSmallChunk, kKey, ToBytes("app 1.0.1")), ErrorCode::kDecryptFailed)
        << size;
    EXPECT_EQ(DecryptError(stream, kSmallChunk, kKey, ByteSpan()), ErrorCode::kDecryptFailed) << size;
  }
}

TEST(Stream, WrongChunkSizeFails) {
  Bytes stream = Encrypt(Pattern(3 * kSmallChunk), kSmallChunk);
  EXPECT_EQ(DecryptError(stream, 32), ErrorCode::kDecryptFailed);
}

TEST(Stream, EveryFlippedBitPositionFails) {
  Bytes stream = Encrypt(Pattern(2 * kSmallChunk + 9), kSmallChunk);
  for (size_t pos = 0; pos < stream.size(); ++pos) {
    Bytes bad = stream;
    bad[pos] ^= static_cast<uint8_t>(1u << (pos % 8));
    EXPECT_EQ(DecryptError(bad), ErrorCode::kDecryptFailed) << pos;
  }
}

TEST(Stream, DecryptorIsUnusableAfterAnError) {
  Bytes stream = Encrypt(Pattern(3 * kSmallChunk), kSmallChunk);
  stream[10] ^= 1;
  auto dec = StreamDecryptor::Create(kKey, kAad, kSmallChunk);
  ASSERT_TRUE(dec);
  Bytes out;
  auto r = dec->Update(stream, out);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kDecryptFailed);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(dec->Update(ByteSpan(stream).first(1), out));
  auto f = dec->Finish(out);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code(), ErrorCode::kInvalidArgument);
}

TEST(Stream, CreateValidatesParameters) {
  for (size_t chunk : {size_t{0}, kMaxChunkSize + 1}) {
    auto e = StreamEncryptor::Create(kKey, kAad, chunk);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code(), ErrorCode::kInvalidArgument);
    auto d = StreamDecryptor::Create(kKey, kAad, chunk);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code(), ErrorCode::kInvalidArgument);
  }
  for (size_t key_size : {size_t{0}, size_t{16}, size_t{31}, size_t{33}}) {
    Bytes key(key_size, 1);
    auto e = StreamEncryptor::Create(key, kAad);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code(), ErrorCode::kInvalidArgument);
    auto d = StreamDecryptor::Create(key, kAad);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(StreamEncryptor::Create(kKey, kAad, kMaxChunkSize));
  EXPECT_TRUE(StreamEncryptor::Create(kKey, kAad, 1));
}

TEST(Stream, OneByteChunks) {
  Bytes plain = Pattern(50);
  auto back = Decrypt(Encrypt(plain, 1, {3}), 1, {5});
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(*back, plain);
}

TEST(Stream, LargeRandomRoundTrip) {
  auto plain = RandomBytes(5 * 1000 * 1000 + 3);
  ASSERT_TRUE(plain);
  Bytes stream = Encrypt(*plain, kDefaultChunkSize, {1 << 20});
  auto back = Decrypt(stream, kDefaultChunkSize, {1 << 20});
  ASSERT_TRUE(back);
  EXPECT_TRUE(*back == *plain);
}

}  // namespace
}  // namespace airlock::crypto
