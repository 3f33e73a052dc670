// Fuzzes a whole .airlock bundle file as a device reads it: the preamble (magic, lengths, header,
// signature block) through InspectBundle without a key (the display path, nothing trusted), then
// with the signer's key (signature, sizes, payload digest), then OpenBundleWithContentKey
// (verification, content decryption over the AEAD stream, archive extraction against the manifest).
// Keys are fixed (fuzz_keys.h): the seeds are bundles fuzz/make_seeds.cc sealed with them, so the
// replay covers the whole open path, and mutations of the preamble reach its parser.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "bundle/bundle.h"
#include "crypto/keys.h"
#include "fuzz_keys.h"
#include "fuzz_util.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace airlock;
  static crypto::PublicKey* signer = [] {
    auto key = crypto::PrivateKey::FromPem(fuzz::kEd25519KeyPem);
    if (!key) std::abort();
    return new crypto::PublicKey(key->Public());
  }();
  bundle::Limits limits;
  limits.max_files = 64;
  limits.max_total_size = 1 << 20;
  auto path = fuzz::WriteInput("input.airlock", data, size);
  auto info = bundle::InspectBundle(path, nullptr, limits);
  if (!info) return 0;
  auto verified = bundle::InspectBundle(path, signer, limits);
  if (!verified) return 0;
  if (!verified->signature_verified || !verified->payload_verified) __builtin_trap();
  fs::path out = fuzz::ScratchDir() / "opened";
  std::error_code ec;
  fs::remove_all(out, ec);
  auto opened = bundle::OpenBundleWithContentKey(path, *signer, ByteSpan(fuzz::kKey, 32), out, limits);
  if (!opened && fs::exists(out)) __builtin_trap();  // a failed open leaves nothing behind
  fs::remove_all(out, ec);
  return 0;
}
