// Seal and open throughput beside the raw bound: OpenSSL AES-256-GCM plus SHA-256 over the same bytes, in
// the same run. Prints the ratios at the end (the goal: open >= 0.7x of the raw bound).
//   build/bin/bundle_bench [--benchmark_min_time=...]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <openssl/evp.h>

#include "bundle/bundle.h"
#include "common/file.h"
#include "crypto/aead_stream.h"
#include "crypto/hash.h"
#include "crypto/random.h"

namespace {

namespace fs = std::filesystem;
using airlock::Bytes;
using airlock::ByteSpan;

constexpr size_t kPayloadSize = 64 << 20;
constexpr size_t kChunk = airlock::crypto::kDefaultChunkSize;

struct Fixture {
  Bytes plain;
  Bytes key;
  std::unique_ptr<airlock::ScopedTempDir> dir;
  fs::path bundle;
  fs::path app;
  std::unique_ptr<airlock::crypto::PrivateKey> signer, device;

  Fixture() {
    plain = *airlock::crypto::RandomBytes(kPayloadSize);
    key = *airlock::crypto::RandomBytes(32);
    fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    dir = std::make_unique<airlock::ScopedTempDir>(*airlock::ScopedTempDir::Create(base, "airlock-bench-"));
    app = dir->path() / "app";
    fs::create_directories(app);
    std::ofstream(app / "payload.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(plain.data()), static_cast<std::streamsize>(plain.size()));
    signer = std::make_unique<airlock::crypto::PrivateKey>(
        *airlock::crypto::PrivateKey::Generate(airlock::crypto::KeyType::kEd25519));
    device = std::make_unique<airlock::crypto::PrivateKey>(
        *airlock::crypto::PrivateKey::Generate(airlock::crypto::KeyType::kX25519));
    bundle = dir->path() / "bench.alb";
    airlock::bundle::SealOptions o{.app_id = "bench.app", .version = "1.0.0",
                                   .format = airlock::bundle::ArchiveFormat::kTar};
    auto r = airlock::bundle::SealBundle(app, o, *signer, {device->Public()}, bundle);
    if (!r) {
      std::fprintf(stderr, "seal failed: %s\n", r.error().ToString().c_str());
      std::abort();
    }
  }
};

Fixture& F() {
  static Fixture f;
  return f;
}

// Raw bound: one EVP context, AES-256-GCM over 64 KiB chunks (IV re-set per chunk) + SHA-256 of the output.
void RawGcmSha256(benchmark::State& state, bool decrypt) {
  Fixture& f = F();
  Bytes out(f.plain.size() + 16);
  uint8_t iv[12] = {};
  uint8_t tag[16] = {};
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), nullptr, f.key.data(), nullptr, decrypt ? 0 : 1);
  for (auto _ : state) {
    airlock::crypto::Hasher h = airlock::crypto::Hasher::Sha256();
    size_t off = 0;
    uint32_t counter = 0;
    while (off < f.plain.size()) {
      size_t n = std::min(kChunk, f.plain.size() - off);
      iv[8] = static_cast<uint8_t>(++counter);
      EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, iv, -1);
      int len = 0;
      EVP_CipherUpdate(ctx, out.data() + off, &len, f.plain.data() + off, static_cast<int>(n));
      if (decrypt) EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag);
      EVP_CipherFinal_ex(ctx, out.data() + off + len, &len);  // decrypt: tag check fails, cost is the same
      if (!decrypt) EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag);
      h.Update(ByteSpan(decrypt ? f.plain.data() + off : out.data() + off, n));
      off += n;
    }
    benchmark::DoNotOptimize(h.Finish());
  }
  EVP_CIPHER_CTX_free(ctx);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.plain.size()));
}

void BM_RawBoundEncrypt(benchmark::State& state) { RawGcmSha256(state, false); }
void BM_RawBoundDecrypt(benchmark::State& state) { RawGcmSha256(state, true); }

// Seal's payload pipeline in memory: streaming AEAD + SHA-256 of the ciphertext.
void BM_SealPayload(benchmark::State& state) {
  Fixture& f = F();
  Bytes out;
  out.reserve(airlock::crypto::StreamCiphertextSize(f.plain.size()));
  for (auto _ : state) {
    out.clear();
    auto enc = airlock::crypto::StreamEncryptor::Create(f.key, {});
    airlock::crypto::Hasher h = airlock::crypto::Hasher::Sha256();
    for (size_t off = 0; off < f.plain.size(); off += 1 << 20) {
      size_t before = out.size();
      (void)enc->Update(ByteSpan(f.plain.data() + off, std::min<size_t>(1 << 20, f.plain.size() - off)), out);
      h.Update(ByteSpan(out.data() + before, out.size() - before));
    }
    size_t before = out.size();
    (void)enc->Finish(out);
    h.Update(ByteSpan(out.data() + before, out.size() - before));
    benchmark::DoNotOptimize(h.Finish());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.plain.size()));
}

// Open of a real .alb file (page cache): read, signature, header, payload digest pass, unwrap, decrypt.
void BM_OpenPayload(benchmark::State& state) {
  Fixture& f = F();
  airlock::crypto::PublicKey verify = f.signer->Public();
  for (auto _ : state) {
    uint64_t total = 0;
    auto r = airlock::bundle::DecryptBundlePayload(f.bundle, verify, *f.device, [&](ByteSpan b) {
      total += b.size();
      return airlock::Result<void>{};
    });
    if (!r) state.SkipWithError(r.error().ToString().c_str());
    benchmark::DoNotOptimize(total);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.plain.size()));
}

// Whole commands, for context: seal a folder (archive + encrypt + write) and open to a folder (+ extract
// and check every file hash).
void BM_SealBundleFolder(benchmark::State& state) {
  Fixture& f = F();
  airlock::bundle::SealOptions o{.app_id = "bench.app", .version = "1.0.0",
                                 .format = airlock::bundle::ArchiveFormat::kTar};
  fs::path out = f.dir->path() / "seal.alb";
  for (auto _ : state) {
    fs::remove(out);
    auto r = airlock::bundle::SealBundle(f.app, o, *f.signer, {f.device->Public()}, out);
    if (!r) state.SkipWithError(r.error().ToString().c_str());
  }
  fs::remove(out);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.plain.size()));
}

void BM_OpenBundleFolder(benchmark::State& state) {
  Fixture& f = F();
  airlock::crypto::PublicKey verify = f.signer->Public();
  fs::path out = f.dir->path() / "opened";
  for (auto _ : state) {
    fs::remove_all(out);
    auto r = airlock::bundle::OpenBundle(f.bundle, verify, *f.device, out);
    if (!r) state.SkipWithError(r.error().ToString().c_str());
  }
  fs::remove_all(out);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.plain.size()));
}

BENCHMARK(BM_RawBoundEncrypt)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SealPayload)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RawBoundDecrypt)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_OpenPayload)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SealBundleFolder)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_OpenBundleFolder)->Unit(benchmark::kMillisecond)->UseRealTime();

// Remembers each benchmark's bytes/second so main() can print ratios against the raw bound.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      auto it = r.counters.find("bytes_per_second");
      if (it != r.counters.end()) rate_[r.benchmark_name()] = it->second.value;
    }
  }
  double Rate(const std::string& prefix) const {
    for (const auto& [name, v] : rate_) {
      if (name.rfind(prefix, 0) == 0) return v;
    }
    return 0;
  }

 private:
  std::map<std::string, double> rate_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto ratio = [&](const char* a, const char* b) {
    double ra = reporter.Rate(a), rb = reporter.Rate(b);
    if (ra > 0 && rb > 0) {
      std::printf("ratio %-22s / %-20s = %.2fx  (%.0f MiB/s vs %.0f MiB/s)\n", a, b, ra / rb,
                  ra / (1 << 20), rb / (1 << 20));
    }
  };
  ratio("BM_SealPayload", "BM_RawBoundEncrypt");
  ratio("BM_OpenPayload", "BM_RawBoundDecrypt");
  ratio("BM_SealBundleFolder", "BM_RawBoundEncrypt");
  ratio("BM_OpenBundleFolder", "BM_RawBoundDecrypt");
  benchmark::Shutdown();
  return 0;
}
