// Fuzzes the inputs a device decrypts: the AEAD stream framing (crypto/aead_stream.h: nonce prefix,
// chunks, tags, final flag) fed in fuzzer-chosen pieces, and wrapped content keys (crypto/wrap.h) for
// X25519 and RSA-2048 recipients. Input: byte 0 picks the mode (0-1 stream, 2 X25519 unwrap, 3 RSA
// unwrap), byte 1 the stream's chunk size - 1; the rest is the ciphertext, fed in pieces of varying
// length. Keys are fixed (fuzz_keys.h) so that the seeds fuzz/make_seeds writes
// with the real encryptor and WrapKey stay valid.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/bytes.h"
#include "crypto/aead_stream.h"
#include "crypto/keys.h"
#include "crypto/wrap.h"
#include "fuzz_keys.h"

namespace {

using namespace airlock;

using fuzz::kAad;
using fuzz::kKey;

const crypto::PrivateKey& Recipient(crypto::KeyType type) {
  static crypto::PrivateKey* x25519 = [] {
    auto key = crypto::PrivateKey::FromPem(fuzz::kX25519KeyPem);
    if (!key) std::abort();
    return new crypto::PrivateKey(std::move(*key));
  }();
  static crypto::PrivateKey* rsa = [] {
    auto key = crypto::PrivateKey::FromPem(fuzz::kRsa2048KeyPem);
    if (!key) std::abort();
    return new crypto::PrivateKey(std::move(*key));
  }();
  return type == crypto::KeyType::kRsa ? *rsa : *x25519;
}

void FuzzStream(size_t chunk_size, ByteSpan in) {
  auto dec = crypto::StreamDecryptor::Create(ByteSpan(kKey, sizeof(kKey)), ByteSpan(kAad, sizeof(kAad)),
                                             chunk_size);
  if (!dec) return;
  Bytes out;
  // Pieces of 1..64 bytes and a few larger ones, fixed by the length so replays are exact.
  size_t pos = 0;
  size_t piece = 1;
  while (pos < in.size()) {
    size_t n = std::min(piece, in.size() - pos);
    if (!dec->Update(in.subspan(pos, n), out)) return;
    pos += n;
    piece = piece * 3 % 97 + 1;
  }
  auto done = dec->Finish(out);
  // A stream that authenticates cannot hold more plaintext than ciphertext.
  if (done && out.size() > in.size()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  ByteSpan rest(data + 2, size - 2);
  switch (data[0] % 4) {
    case 0:
    case 1:
      // Small chunk sizes so that many chunks fit in a fuzz input (1..256 bytes).
      FuzzStream(static_cast<size_t>(data[1]) + 1, rest);
      break;
    case 2:
      (void)crypto::UnwrapKey(Recipient(crypto::KeyType::kX25519), rest, ByteSpan(kAad, sizeof(kAad)));
      break;
    case 3:
      (void)crypto::UnwrapKey(Recipient(crypto::KeyType::kRsa), rest, ByteSpan(kAad, sizeof(kAad)));
      break;
  }
  return 0;
}
