// The ceilings for bench/agent_bench.sh, measured over the same files in the same run: the folder
// is sealed the way `airlock release publish` seals it (zip, 64 KiB chunks), then
//   raw:     one OpenSSL EVP context doing AES-256-GCM decryption over the bundle's payload bytes
//   in
//            its chunk size (the IV re-set per chunk) plus SHA-256 over the same bytes, in memory;
//   decrypt: bundle::DecryptBundlePayload on the .alb file (signature, header, one pass hashing and
//            decrypting every chunk, digest compared), plaintext to a sink that discards it.
// Prints one line: "bytes=N raw_mib_s=X decrypt_mib_s=Y" (medians of ITERATIONS runs, in bundle
// bytes).
//   build/bin/agent_bench_bound FOLDER [ITERATIONS]
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "bundle/bundle.h"
#include "common/file.h"
#include "crypto/aead_stream.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/random.h"

namespace {

namespace fs = std::filesystem;
using airlock::Bytes;
using airlock::ByteSpan;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "agent_bench_bound: %s\n", what.c_str());
  std::exit(1);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// AES-256-GCM decryption + SHA-256 over `bytes` in `chunk`-sized pieces; returns seconds.
double RawBound(const Bytes& bytes, size_t chunk) {
  Bytes key = *airlock::crypto::RandomBytes(32);
  Bytes out(chunk + 16);
  uint8_t iv[12] = {};
  uint8_t tag[16] = {};
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), nullptr, 0);
  const auto start = Clock::now();
  airlock::crypto::Hasher h = airlock::crypto::Hasher::Sha256();
  uint32_t counter = 0;
  for (size_t off = 0; off < bytes.size(); off += chunk) {
    const size_t n = std::min(chunk, bytes.size() - off);
    std::memcpy(iv + 8, &++counter, sizeof(counter));
    EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, iv, -1);
    int len = 0;
    EVP_CipherUpdate(ctx, out.data(), &len, bytes.data() + off, static_cast<int>(n));
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag);
    EVP_CipherFinal_ex(ctx, out.data() + len, &len);  // the tag check fails; the cost is the same
    h.Update(ByteSpan(bytes.data() + off, n));
  }
  volatile uint8_t sink = h.Finish()[0];
  (void)sink;
  const double s = Seconds(start);
  EVP_CIPHER_CTX_free(ctx);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Die("usage: agent_bench_bound FOLDER [ITERATIONS]");
  const fs::path folder = argv[1];
  const int iterations = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
  auto dir = airlock::ScopedTempDir::Create({}, "airlock-agent-bench-");
  if (!dir) Die(dir.error().ToString());
  auto signer = airlock::crypto::PrivateKey::Generate(airlock::crypto::KeyType::kEd25519);
  auto device = airlock::crypto::PrivateKey::Generate(airlock::crypto::KeyType::kX25519);
  if (!signer || !device) Die("cannot generate keys");
  const fs::path bundle = dir->path() / "bench.alb";
  airlock::bundle::SealOptions options{.app_id = "bench.app", .version = "1.0.0"};
  auto sealed = airlock::bundle::SealBundle(folder, options, *signer, {device->Public()}, bundle);
  if (!sealed) Die("seal: " + sealed.error().ToString());
  auto bytes = airlock::ReadFile(bundle, uint64_t{1} << 34);
  if (!bytes) Die("read: " + bytes.error().ToString());
  const double mib = static_cast<double>(bytes->size()) / (1 << 20);

  std::vector<double> raw, decrypt, open;
  for (int i = 0; i < iterations; ++i) {
    raw.push_back(mib / RawBound(*bytes, sealed->chunk_size));
    const auto start = Clock::now();
    auto opened = airlock::bundle::DecryptBundlePayload(
        bundle, signer->Public(), *device, [](ByteSpan) -> airlock::Result<void> { return {}; });
    if (!opened) Die("decrypt: " + opened.error().ToString());
    decrypt.push_back(mib / Seconds(start));
    const fs::path out = dir->path() / ("open" + std::to_string(i));
    const auto open_start = Clock::now();
    auto unpacked = airlock::bundle::OpenBundle(bundle, signer->Public(), *device, out);
    if (!unpacked) Die("open: " + unpacked.error().ToString());
    open.push_back(mib / Seconds(open_start));
    std::error_code ec;
    fs::remove_all(out, ec);
  }
  std::printf("bytes=%zu raw_mib_s=%.1f decrypt_mib_s=%.1f open_mib_s=%.1f\n", bytes->size(),
              Median(raw), Median(decrypt), Median(open));
  return 0;
}
