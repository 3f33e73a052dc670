// Writes the seed corpora of the fuzz targets whose inputs must be made by the real code (archives,
// bundles, AEAD streams and wrapped keys, TUF repositories, key backups and shares):
//   make_seeds CORPUS_DIR      (normally fuzz/corpus; files are replaced)
// Every seed is produced by the same functions airlock uses to write these inputs, with the fixed
// test keys of fuzz_keys.h where the target needs them.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bundle/archive.h"
#include "bundle/bundle.h"
#include "common/bytes.h"
#include "common/file.h"
#include "crypto/aead_stream.h"
#include "crypto/keys.h"
#include "crypto/wrap.h"
#include "fuzz_keys.h"
#include "keys/backup.h"
#include "keys/file_vault.h"
#include "keys/shamir.h"
#include "keys/vault_state.h"
#include "metadata/metadata.h"
#include "repo_files.h"

namespace fs = std::filesystem;
using namespace airlock;

namespace {

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "make_seeds: %s: %s\n", what, r.error().ToString().c_str());
    std::exit(1);
  }
  return std::move(*r);
}

void Must(Result<void> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "make_seeds: %s: %s\n", what, r.error().ToString().c_str());
    std::exit(1);
  }
}

void Write(const fs::path& p, ByteSpan bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) std::exit(1);
}

Bytes ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Bytes Prefixed(std::initializer_list<uint8_t> prefix, ByteSpan rest) {
  Bytes out(prefix);
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

fs::path AppFolder(const fs::path& tmp) {
  fs::path in = tmp / "app";
  fs::create_directories(in / "assets");
  Write(in / "index.html", AsBytes("<h1>hello</h1>\n"));
  Write(in / "assets" / "app.js", AsBytes("console.log('airlock');\n"));
  return in;
}

void Archives(const fs::path& corpus, const fs::path& tmp) {
  fs::path in = AppFolder(tmp);
  for (auto format : {bundle::ArchiveFormat::kZip, bundle::ArchiveFormat::kTar}) {
    fs::path out = tmp / (std::string("app.") + std::string(bundle::ArchiveFormatName(format)));
    (void)Must(bundle::CreateArchive(in, format, out), "CreateArchive");
    Write(corpus / "archive_fuzz" / out.filename(), ReadAll(out));
  }
}

void Bundles(const fs::path& corpus, const fs::path& tmp) {
  auto signer = Must(crypto::PrivateKey::FromPem(fuzz::kEd25519KeyPem), "ed25519 key");
  auto recipient = Must(crypto::PrivateKey::FromPem(fuzz::kX25519KeyPem), "x25519 key");
  fs::path in = AppFolder(tmp);
  for (auto format : {bundle::ArchiveFormat::kZip, bundle::ArchiveFormat::kTar}) {
    bundle::SealOptions options;
    options.app_id = "com.example.app";
    options.version = "1.2.3";
    options.format = format;
    options.chunk_size = bundle::kMinChunkSize;
    options.content_key = ByteSpan(fuzz::kKey, sizeof(fuzz::kKey));
    std::string name = std::string("sealed-") + std::string(bundle::ArchiveFormatName(format)) + ".airlock";
    fs::path out = tmp / name;
    (void)Must(bundle::SealBundle(in, options, signer, {recipient.Public()}, out), "SealBundle");
    Write(corpus / "bundle_file_fuzz" / name, ReadAll(out));
  }
}

void Streams(const fs::path& corpus) {
  const fs::path dir = corpus / "aead_wrap_fuzz";
  struct Case {
    const char* name;
    size_t chunk_size;
    size_t plaintext;
  };
  for (Case c : {Case{"stream-empty", 16, 0}, Case{"stream-one-chunk", 16, 10},
                 Case{"stream-three-chunks", 16, 40}, Case{"stream-exact-chunks", 32, 64}}) {
    auto enc = Must(crypto::StreamEncryptor::Create(ByteSpan(fuzz::kKey, 32),
                                                    ByteSpan(fuzz::kAad, sizeof(fuzz::kAad)),
                                                    c.chunk_size),
                    "StreamEncryptor");
    Bytes plain(c.plaintext, 'p');
    Bytes out;
    Must(enc.Update(plain, out), "Update");
    Must(enc.Finish(out), "Finish");
    Write(dir / c.name, Prefixed({0, static_cast<uint8_t>(c.chunk_size - 1)}, out));
  }
  auto x25519 = Must(crypto::PrivateKey::FromPem(fuzz::kX25519KeyPem), "x25519 key");
  auto rsa = Must(crypto::PrivateKey::FromPem(fuzz::kRsa2048KeyPem), "rsa key");
  Bytes wrapped = Must(crypto::WrapKey(x25519.Public(), ByteSpan(fuzz::kKey, 32),
                                       ByteSpan(fuzz::kAad, sizeof(fuzz::kAad))),
                       "WrapKey x25519");
  Write(dir / "wrap-x25519", Prefixed({2, 0}, wrapped));
  wrapped = Must(crypto::WrapKey(rsa.Public(), ByteSpan(fuzz::kKey, 32),
                                 ByteSpan(fuzz::kAad, sizeof(fuzz::kAad))),
                 "WrapKey rsa");
  Write(dir / "wrap-rsa", Prefixed({3, 0}, wrapped));
}

template <typename T>
Bytes Sign(const T& role, const std::vector<const crypto::PrivateKey*>& keys) {
  auto md = Must(metadata::SignMetadata(role, keys), "SignMetadata");
  return ToBytes(Must(md.ToBytes(), "ToBytes"));
}

// A repository as the client tests build it (client/test_repo.h): root v1 (the trusted root) and
// v2 (a rotated timestamp key), targets with one target and a delegation, a delegated role,
// snapshot and timestamp, consistent snapshots.
void Repositories(const fs::path& corpus) {
  const std::time_t now = 1'800'000'000;
  const std::time_t day = 86400;
  auto key = [] { return Must(crypto::PrivateKey::Generate(crypto::KeyType::kEd25519), "key"); };
  crypto::PrivateKey root_key = key(), targets_key = key(), snapshot_key = key(),
                     timestamp_key = key(), timestamp_key2 = key(), delegated_key = key();
  metadata::Root root;
  root.version = 1;
  root.expires = now + 365 * day;
  root.consistent_snapshot = true;
  Must(root.AddKey("root", root_key.Public()), "AddKey");
  Must(root.AddKey("targets", targets_key.Public()), "AddKey");
  Must(root.AddKey("snapshot", snapshot_key.Public()), "AddKey");
  Must(root.AddKey("timestamp", timestamp_key.Public()), "AddKey");
  Bytes root1 = Sign(root, {&root_key});
  metadata::Root root2 = root;
  root2.version = 2;
  root2.roles["timestamp"].keyids.clear();
  Must(root2.AddKey("timestamp", timestamp_key2.Public()), "AddKey");
  Bytes root2_bytes = Sign(root2, {&root_key});

  metadata::Targets targets;
  targets.version = 1;
  targets.expires = now + 90 * day;
  targets.targets["app/bundle.airlock"] = metadata::TargetFile::FromData(AsBytes("bundle bytes"));
  targets.delegations.emplace();
  metadata::DelegatedRole role;
  role.name = "delegated";
  role.paths = std::vector<std::string>{"delegated/*"};
  targets.delegations->roles.push_back(role);
  Must(targets.delegations->AddKey("delegated", delegated_key.Public()), "AddKey");
  metadata::Targets delegated;
  delegated.version = 1;
  delegated.expires = now + 90 * day;
  delegated.targets["delegated/a.txt"] = metadata::TargetFile::FromData(AsBytes("a"));
  Bytes targets_bytes = Sign(targets, {&targets_key});
  Bytes delegated_bytes = Sign(delegated, {&delegated_key});

  metadata::Snapshot snapshot;
  snapshot.version = 1;
  snapshot.expires = now + 7 * day;
  snapshot.meta["targets.json"].version = 1;
  snapshot.meta["delegated.json"].version = 1;
  Bytes snapshot_bytes = Sign(snapshot, {&snapshot_key});

  metadata::Timestamp timestamp;
  timestamp.version = 1;
  timestamp.expires = now + 1 * day;
  timestamp.snapshot_meta.version = 1;
  timestamp.snapshot_meta.length = snapshot_bytes.size();
  timestamp.snapshot_meta.hashes = metadata::TargetFile::FromData(snapshot_bytes).hashes;

  const fs::path dir = corpus / "tuf_client_fuzz";
  {
    Bytes repo;
    fuzz::AppendRepoFile(repo, "trusted-root.json", root1);
    fuzz::AppendRepoFile(repo, "timestamp.json", Sign(timestamp, {&timestamp_key}));
    fuzz::AppendRepoFile(repo, "1.snapshot.json", snapshot_bytes);
    fuzz::AppendRepoFile(repo, "1.targets.json", targets_bytes);
    fuzz::AppendRepoFile(repo, "1.delegated.json", delegated_bytes);
    Write(dir / "repo-v1", repo);
  }
  {
    Bytes repo;
    fuzz::AppendRepoFile(repo, "trusted-root.json", root1);
    fuzz::AppendRepoFile(repo, "2.root.json", root2_bytes);
    fuzz::AppendRepoFile(repo, "timestamp.json", Sign(timestamp, {&timestamp_key2}));
    fuzz::AppendRepoFile(repo, "1.snapshot.json", snapshot_bytes);
    fuzz::AppendRepoFile(repo, "1.targets.json", targets_bytes);
    fuzz::AppendRepoFile(repo, "1.delegated.json", delegated_bytes);
    Write(dir / "repo-root-rotation", repo);
  }
  {
    // The rotation without the new root: the timestamp does not verify.
    Bytes repo;
    fuzz::AppendRepoFile(repo, "trusted-root.json", root1);
    fuzz::AppendRepoFile(repo, "timestamp.json", Sign(timestamp, {&timestamp_key2}));
    Write(dir / "repo-missing-root", repo);
  }
}

void KeyFiles(const fs::path& corpus, const fs::path& tmp) {
  keys::KeyStoreOptions options;
  options.kdf = keys::KdfParams::ForTests();
  options.secret = [] { return Result<std::string>(std::string("seed vault passphrase")); };
  options.now = [] { return int64_t{1'800'000'000}; };
  auto store = Must(keys::OpenFileVault(tmp / "seed.vault", options, true), "OpenFileVault");
  (void)Must(store->Create("root", crypto::KeyType::kEd25519, keys::KeyPurpose::kRoot), "Create");
  (void)Must(store->Create("content", crypto::KeyType::kX25519, keys::KeyPurpose::kContentWrap),
             "Create");
  fs::path backup = tmp / "keys.backup.json";
  auto result = Must(keys::WriteBackup(*store, "fuzz backup passphrase", backup,
                                       keys::ShareSpec{2, 3}, keys::KdfParams::ForTests()),
                     "WriteBackup");
  const fs::path dir = corpus / "vault_files_fuzz";
  Write(dir / "backup", Prefixed({0}, ReadAll(backup)));
  if (result.share_files.size() < 2) std::exit(1);
  Bytes shares = Prefixed({1}, ReadAll(result.share_files[0]));
  std::string cut = "\n--8<--\n";
  shares.insert(shares.end(), cut.begin(), cut.end());
  Bytes second = ReadAll(result.share_files[1]);
  shares.insert(shares.end(), second.begin(), second.end());
  Write(dir / "shares-2-of-3", shares);
  Write(dir / "share-alone", Prefixed({1}, ReadAll(result.share_files[2])));
  keys::VaultState state;
  state.access_control = true;
  state.checkpoint_key = "audit";
  state.audit_heads["log-1"] = keys::AuditAnchor{12, std::string(64, 'a'), 3};
  Write(dir / "vault-state", Prefixed({2}, keys::EncodeVaultState(state)));
  auto split = Must(keys::ShamirSplit(AsBytes("a secret of some bytes"), 2, 3), "ShamirSplit");
  Bytes shamir = {3};
  for (const auto& s : split) {
    shamir.push_back(s.x);
    shamir.push_back(static_cast<uint8_t>(s.y.size()));
    shamir.insert(shamir.end(), s.y.begin(), s.y.end());
  }
  Write(dir / "shamir-3-shares", shamir);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
    return 2;
  }
  fs::path corpus = argv[1];
  auto tmp = Must(ScopedTempDir::Create({}, "airlock-seeds-"), "temp dir");
  Archives(corpus, tmp.path() / "a");
  Bundles(corpus, tmp.path() / "b");
  Streams(corpus);
  Repositories(corpus);
  KeyFiles(corpus, tmp.path() / "k");
  std::printf("seeds written under %s\n", corpus.c_str());
  return 0;
}
