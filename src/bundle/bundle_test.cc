#include "bundle/bundle.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "bundle/bundle_test_util.h"
#include "common/file.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/sign.h"
#include "crypto/wrap.h"

namespace airlock::bundle {
namespace {

namespace fs = std::filesystem;
using crypto::KeyType;
using crypto::PrivateKey;
using crypto::PublicKey;

const fs::path kVectors = fs::path(AIRLOCK_VECTORS_DIR) / "capgo";

Bytes Slurp(const fs::path& p) { return *ReadFile(p, 1 << 30); }

void Spit(const fs::path& p, const Bytes& b) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(b.data()),
                                                             static_cast<std::streamsize>(b.size()));
}

using test_util::Tree;
using test_util::WriteText;

// Hidden entries of `dir` (staging left behind starts with a dot).
int Leftovers(const fs::path& dir) { return test_util::Leftovers(dir, "."); }

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<ScopedTempDir>(*ScopedTempDir::Create());
    app_ = tmp_->path() / "app";
    WriteText(app_ / "index.html", "<html>hello</html>\n");
    WriteText(app_ / "assets/app.js", "console.log('v1');\n");
    WriteText(app_ / "assets/img/empty.bin", "");
    Bytes big = *crypto::RandomBytes(300 * 1024 + 17);  // several chunks, not chunk-aligned
    Spit(app_ / "assets/big.bin", big);
    signer_ = std::make_unique<PrivateKey>(*PrivateKey::Generate(KeyType::kEd25519));
    device_ = std::make_unique<PrivateKey>(*PrivateKey::Generate(KeyType::kX25519));
    out_ = tmp_->path() / "out";
    fs::create_directory(out_);
  }

  fs::path Seal(const fs::path& input, const std::string& name = "app.alb",
                ArchiveFormat format = ArchiveFormat::kZip) {
    SealOptions o;
    o.app_id = "com.example.app";
    o.version = "1.2.3";
    o.format = format;
    fs::path p = tmp_->path() / name;
    auto r = SealBundle(input, o, *signer_, {device_->Public()}, p);
    EXPECT_TRUE(r) << r.error().ToString();
    return p;
  }

  Result<BundleHeader> Open(const fs::path& bundle, const fs::path& dest, const Limits& limits = {}) {
    return OpenBundle(bundle, signer_->Public(), *device_, dest, limits);
  }

  // Opens `bundle`, expects `code`, and checks that nothing was left behind.
  void ExpectRefused(const fs::path& bundle, ErrorCode code) {
    fs::path dest = out_ / "refused";
    auto r = Open(bundle, dest);
    ASSERT_FALSE(r) << "bundle was accepted";
    EXPECT_EQ(r.error().code(), code) << r.error().ToString();
    EXPECT_FALSE(fs::exists(dest));
    EXPECT_EQ(Leftovers(out_), 0);
  }

  // Rewrites the bundle at `b` with its header text passed through `edit`, signed again by the
  // genuine signer: what a holder of the signing key (or a bug in a signer) could produce.
  void Resign(const fs::path& b, const std::function<std::string(std::string)>& edit) {
    Bytes bytes = Slurp(b);
    uint32_t header_len = ReadU32Be(bytes.data() + 8);
    std::string header(bytes.begin() + 12, bytes.begin() + 12 + header_len);
    uint32_t sig_len = ReadU32Be(bytes.data() + 12 + header_len);
    Bytes payload(bytes.begin() + 12 + header_len + 4 + sig_len, bytes.end());
    std::string edited = edit(header);
    Bytes out(kBundleMagic, kBundleMagic + sizeof kBundleMagic);
    AppendU32Be(out, static_cast<uint32_t>(edited.size()));
    out.insert(out.end(), edited.begin(), edited.end());
    Bytes msg = ToBytes(kSignaturePrefix);
    msg.insert(msg.end(), out.begin(), out.end());
    Bytes sig = *crypto::Sign(*signer_, msg);
    std::string block = nlohmann::json{
        {"keyid", signer_->KeyId()},
        {"scheme", signer_->Public().TufScheme()},
        {"sig",
         HexEncode(sig)}}.dump();
    AppendU32Be(out, static_cast<uint32_t>(block.size()));
    out.insert(out.end(), block.begin(), block.end());
    out.insert(out.end(), payload.begin(), payload.end());
    Spit(b, out);
  }

  std::unique_ptr<ScopedTempDir> tmp_;
  fs::path app_, out_;
  std::unique_ptr<PrivateKey> signer_, device_;
};

TEST_F(BundleTest, RoundTripsAFolderAsZipAndTar) {
  for (ArchiveFormat f : {ArchiveFormat::kZip, ArchiveFormat::kTar}) {
    std::string name(ArchiveFormatName(f));
    fs::path b = Seal(app_, name + ".alb", f);
    auto h = Open(b, out_ / name);
    ASSERT_TRUE(h) << h.error().ToString();
    EXPECT_EQ(h->archive, f);
    EXPECT_EQ(h->files.size(), 4u);
    EXPECT_EQ(Tree(out_ / name), Tree(app_));
  }
  EXPECT_EQ(Leftovers(out_), 0);
  EXPECT_EQ(Leftovers(tmp_->path()), 0);
}

TEST_F(BundleTest, SealsAnExistingZipAsItIs) {
  fs::path b = Seal(kVectors / "full/bundle.zip");
  auto h = Open(b, out_ / "capgo");
  ASSERT_TRUE(h) << h.error().ToString();
  EXPECT_EQ(h->archive, ArchiveFormat::kZip);
  EXPECT_EQ(h->plain_length, fs::file_size(kVectors / "full/bundle.zip"));
  EXPECT_EQ(Tree(out_ / "capgo"), Tree(kVectors / "dist"));
}

// A zip from a tool that cannot seek (tests/vectors/zip_streamed/README.md): stored entries whose
// sizes follow their data, one of them a nested zip holding the data descriptor signature. The
// device's streaming reader must find each entry's real end.
TEST_F(BundleTest, OpensAStreamedZipWithANestedZipAsItIs) {
  const fs::path zip = fs::path(AIRLOCK_VECTORS_DIR) / "zip_streamed" / "streamed.zip";
  fs::path b = Seal(zip, "streamed.alb");
  auto h = Open(b, out_ / "streamed");
  ASSERT_TRUE(h) << h.error().ToString();
  ASSERT_EQ(h->files.size(), 3u);
  EXPECT_EQ(h->files[0].path, "assets/inner.zip");
  EXPECT_EQ(fs::file_size(out_ / "streamed" / "assets" / "inner.zip"), 5178u);
  EXPECT_EQ(fs::file_size(out_ / "streamed" / "index.html"), 22u);
  EXPECT_EQ(fs::file_size(out_ / "streamed" / "z.txt"), 21u);
  EXPECT_EQ(Leftovers(out_), 0);
}

TEST_F(BundleTest, EveryRecipientCanOpenAndOthersCannot) {
  PrivateKey rsa = *PrivateKey::Generate(KeyType::kRsa);
  PrivateKey other = *PrivateKey::Generate(KeyType::kX25519);
  SealOptions o{.app_id = "com.example.app", .version = "2.0.0-beta.1"};
  fs::path b = tmp_->path() / "multi.alb";
  ASSERT_TRUE(SealBundle(app_, o, *signer_, {device_->Public(), rsa.Public()}, b));
  ASSERT_TRUE(OpenBundle(b, signer_->Public(), *device_, out_ / "x25519"));
  ASSERT_TRUE(OpenBundle(b, signer_->Public(), rsa, out_ / "rsa"));
  EXPECT_EQ(Tree(out_ / "rsa"), Tree(app_));
  auto r = OpenBundle(b, signer_->Public(), other, out_ / "other");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kWrongKey);
  EXPECT_FALSE(fs::exists(out_ / "other"));
}

// Device mode: the content key is unwrapped elsewhere (the server's vault) and handed to the
// device.
TEST_F(BundleTest, OpensWithTheUnwrappedContentKey) {
  PrivateKey rsa = *PrivateKey::Generate(KeyType::kRsa);
  SealOptions o{.app_id = "com.example.app", .version = "3.1.0"};
  fs::path b = tmp_->path() / "ck.alb";
  ASSERT_TRUE(SealBundle(app_, o, *signer_, {device_->Public(), rsa.Public()}, b));
  PublicKey signer_pub = signer_->Public();
  auto info = InspectBundle(b, &signer_pub);
  ASSERT_TRUE(info) << info.error().ToString();
  for (const PrivateKey* key : {device_.get(), &rsa}) {
    const Recipient* rec = nullptr;
    for (const Recipient& r : info->header.recipients) {
      if (r.key_id == key->KeyId()) rec = &r;
    }
    ASSERT_NE(rec, nullptr);
    auto ck = crypto::UnwrapKey(*key, rec->wrapped_key, ContentKeyAad(o.app_id, o.version));
    ASSERT_TRUE(ck) << ck.error().ToString();
    ASSERT_EQ(ck->size(), 32u);
    fs::path dest = out_ / std::string(crypto::KeyTypeName(key->type()));
    auto h = OpenBundleWithContentKey(b, signer_->Public(), *ck, dest);
    ASSERT_TRUE(h) << h.error().ToString();
    EXPECT_EQ(h->version, "3.1.0");
    EXPECT_EQ(Tree(dest), Tree(app_));

    // The streamed payload is the archive, byte for byte the same as with the recipient key.
    Bytes with_key, with_ck;
    ASSERT_TRUE(DecryptBundlePayload(b, signer_->Public(), *key, [&](ByteSpan s) -> Result<void> {
      with_key.insert(with_key.end(), s.begin(), s.end());
      return {};
    }));
    ASSERT_TRUE(DecryptBundlePayloadWithContentKey(
        b, signer_->Public(), *ck, [&](ByteSpan s) -> Result<void> {
          with_ck.insert(with_ck.end(), s.begin(), s.end());
          return {};
        }));
    EXPECT_EQ(with_ck.size(), h->plain_length);
    EXPECT_EQ(with_ck, with_key);
  }
  EXPECT_EQ(Leftovers(out_), 0);
}

TEST_F(BundleTest, RefusesAWrongContentKeyAndWritesNothing) {
  fs::path b = Seal(app_);
  Bytes wrong = *crypto::RandomBytes(32);
  size_t sunk = 0;
  auto d = DecryptBundlePayloadWithContentKey(b, signer_->Public(), wrong,
                                              [&](ByteSpan s) -> Result<void> {
                                                sunk += s.size();
                                                return {};
                                              });
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kDecryptFailed) << d.error().ToString();
  EXPECT_EQ(sunk, 0u);

  fs::path dest = out_ / "wrong";
  auto r = OpenBundleWithContentKey(b, signer_->Public(), wrong, dest);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kDecryptFailed) << r.error().ToString();
  EXPECT_FALSE(fs::exists(dest));
  EXPECT_EQ(Leftovers(out_), 0);

  auto short_key = OpenBundleWithContentKey(b, signer_->Public(), ByteSpan(wrong).first(16), dest);
  ASSERT_FALSE(short_key);
  EXPECT_EQ(short_key.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dest));
  EXPECT_EQ(Leftovers(out_), 0);
}

TEST_F(BundleTest, ContentKeyModeStillVerifiesTheSignature) {
  fs::path b = Seal(app_);
  PublicKey signer_pub = signer_->Public();
  auto info = InspectBundle(b, &signer_pub);
  ASSERT_TRUE(info);
  auto ck = crypto::UnwrapKey(*device_, info->header.recipients[0].wrapped_key,
                              ContentKeyAad(info->header.app_id, info->header.version));
  ASSERT_TRUE(ck);
  PrivateKey mallory = *PrivateKey::Generate(KeyType::kEd25519);
  fs::path dest = out_ / "x";
  auto r = OpenBundleWithContentKey(b, mallory.Public(), *ck, dest);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kWrongKey);
  EXPECT_FALSE(fs::exists(dest));

  Bytes bytes = Slurp(b);
  bytes[bytes.size() - 1] ^= 0x01;  // last payload byte
  Spit(b, bytes);
  r = OpenBundleWithContentKey(b, signer_->Public(), *ck, dest);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  EXPECT_FALSE(fs::exists(dest));
  EXPECT_EQ(Leftovers(out_), 0);
}

TEST_F(BundleTest, EachSealUsesAFreshContentKey) {
  fs::path a = Seal(app_, "a.alb");
  fs::path b = Seal(app_, "b.alb");
  auto ha = InspectBundle(a, nullptr);
  auto hb = InspectBundle(b, nullptr);
  ASSERT_TRUE(ha && hb);
  EXPECT_NE(ha->header.payload_sha256, hb->header.payload_sha256);
  EXPECT_NE(ha->header.recipients[0].wrapped_key, hb->header.recipients[0].wrapped_key);
}

TEST_F(BundleTest, SupportsEcdsaAndRsaSigners) {
  for (KeyType t : {KeyType::kEcdsaP256, KeyType::kRsa}) {
    signer_ = std::make_unique<PrivateKey>(*PrivateKey::Generate(t));
    fs::path b = Seal(app_, std::string(crypto::KeyTypeName(t)) + ".alb");
    auto h = Open(b, out_ / std::string(crypto::KeyTypeName(t)));
    ASSERT_TRUE(h) << h.error().ToString();
  }
}

TEST_F(BundleTest, RefusesAnotherSignersKey) {
  fs::path b = Seal(app_);
  PrivateKey mallory = *PrivateKey::Generate(KeyType::kEd25519);
  auto r = OpenBundle(b, mallory.Public(), *device_, out_ / "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kWrongKey);
  EXPECT_NE(r.error().message().find("signed by key"), std::string::npos);
}

TEST_F(BundleTest, RefusesAWrongDecryptionKey) {
  fs::path b = Seal(app_);
  device_ = std::make_unique<PrivateKey>(*PrivateKey::Generate(KeyType::kX25519));
  ExpectRefused(b, ErrorCode::kWrongKey);
}

TEST_F(BundleTest, RefusesATamperedHeader) {
  fs::path b = Seal(app_);
  Bytes bytes = Slurp(b);
  // Change the version inside the signed header: "1.2.3" -> "1.2.4".
  std::string s(bytes.begin(), bytes.end());
  size_t pos = s.find("\"1.2.3\"");
  ASSERT_NE(pos, std::string::npos);
  bytes[pos + 5] = '4';
  Spit(b, bytes);
  ExpectRefused(b, ErrorCode::kBadSignature);
}

TEST_F(BundleTest, RefusesATamperedSignature) {
  fs::path b = Seal(app_);
  Bytes bytes = Slurp(b);
  std::string s(bytes.begin(), bytes.end());
  size_t pos = s.find("\"sig\":\"");
  ASSERT_NE(pos, std::string::npos);
  bytes[pos + 7] = bytes[pos + 7] == 'a' ? 'b' : 'a';
  Spit(b, bytes);
  ExpectRefused(b, ErrorCode::kBadSignature);
}

TEST_F(BundleTest, RefusesATamperedPayloadBeforeDecrypting) {
  fs::path b = Seal(app_);
  Bytes bytes = Slurp(b);
  for (size_t offset : {bytes.size() - 1, bytes.size() - 70000, bytes.size() / 2 + 100000}) {
    Bytes t = bytes;
    t[offset] ^= 0x01;
    Spit(b, t);
    ExpectRefused(b, ErrorCode::kHashMismatch);
  }
}

TEST_F(BundleTest, RefusesTruncation) {
  fs::path b = Seal(app_);
  Bytes bytes = Slurp(b);
  for (size_t keep : {bytes.size() - 1, bytes.size() - 65536 - 16, size_t{200}, size_t{11}, size_t{5}}) {
    Spit(b, Bytes(bytes.begin(), bytes.begin() + static_cast<long>(keep)));
    ExpectRefused(b, ErrorCode::kTruncated);
  }
}

TEST_F(BundleTest, RefusesTrailingData) {
  fs::path b = Seal(app_);
  Bytes bytes = Slurp(b);
  bytes.push_back(0);
  Spit(b, bytes);
  ExpectRefused(b, ErrorCode::kTrailingData);
}

TEST_F(BundleTest, RefusesGarbageAndEmptyFiles) {
  fs::path b = tmp_->path() / "garbage.alb";
  Spit(b, *crypto::RandomBytes(4096));
  ExpectRefused(b, ErrorCode::kMalformed);
  Spit(b, Bytes{});
  ExpectRefused(b, ErrorCode::kMalformed);
  Spit(b, ToBytes("PK\x03\x04 this is a zip, not a bundle"));
  ExpectRefused(b, ErrorCode::kMalformed);
}

TEST_F(BundleTest, RefusesAnOversizedHeaderLengthWithoutReadingIt) {
  Bytes bytes(kBundleMagic, kBundleMagic + 8);
  AppendU32Be(bytes, 0xffffffffu);
  fs::path b = tmp_->path() / "huge.alb";
  Spit(b, bytes);
  ExpectRefused(b, ErrorCode::kLimitExceeded);
}

TEST_F(BundleTest, EnforcesTheUnpackedSizeLimit) {
  fs::path b = Seal(app_);
  Limits small;
  small.max_total_size = 1024;
  auto r = Open(b, out_ / "small", small);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded) << r.error().ToString();
  EXPECT_FALSE(fs::exists(out_ / "small"));
}

TEST_F(BundleTest, RefusesToOverwriteANonEmptyFolder) {
  fs::path b = Seal(app_);
  WriteText(out_ / "busy/keep.txt", "mine");
  auto r = Open(b, out_ / "busy");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(Tree(out_ / "busy").size(), 1u);
  // An empty existing folder is fine.
  fs::create_directory(out_ / "empty");
  EXPECT_TRUE(Open(b, out_ / "empty"));
}

TEST_F(BundleTest, SealRejectsBadArguments) {
  SealOptions o{.app_id = "com.example.app", .version = "1.0"};
  fs::path b = tmp_->path() / "bad.alb";
  auto r = SealBundle(app_, o, *signer_, {device_->Public()}, b);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  o.version = "1.0.0";
  o.app_id = "bad app/id";
  EXPECT_EQ(SealBundle(app_, o, *signer_, {device_->Public()}, b).error().code(),
            ErrorCode::kInvalidArgument);
  o.app_id = "com.example.app";
  EXPECT_EQ(SealBundle(app_, o, *device_, {device_->Public()}, b).error().code(),
            ErrorCode::kInvalidArgument);  // x25519 cannot sign
  EXPECT_EQ(SealBundle(app_, o, *signer_, {signer_->Public()}, b).error().code(),
            ErrorCode::kInvalidArgument);  // ed25519 cannot receive
  EXPECT_EQ(SealBundle(app_, o, *signer_, {}, b).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(SealBundle(app_, o, *signer_, {device_->Public(), device_->Public()}, b).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(SealBundle(tmp_->path() / "nope", o, *signer_, {device_->Public()}, b).error().code(),
            ErrorCode::kNotFound);
  EXPECT_FALSE(fs::exists(b));
  EXPECT_EQ(Leftovers(tmp_->path()), 0);
  WriteText(b, "existing");
  EXPECT_EQ(SealBundle(app_, o, *signer_, {device_->Public()}, b).error().code(),
            ErrorCode::kAlreadyExists);
}

TEST_F(BundleTest, SealRefusesSymlinksInTheFolder) {
  fs::create_symlink("/etc/passwd", app_ / "assets/passwd");
  SealOptions o{.app_id = "com.example.app", .version = "1.0.0"};
  fs::path b = tmp_->path() / "link.alb";
  auto r = SealBundle(app_, o, *signer_, {device_->Public()}, b);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsafePath);
  EXPECT_FALSE(fs::exists(b));
}

TEST_F(BundleTest, InspectVerifiesOnlyWhenAskedTo) {
  fs::path b = Seal(app_);
  auto unverified = InspectBundle(b, nullptr);
  ASSERT_TRUE(unverified);
  EXPECT_FALSE(unverified->signature_verified);
  EXPECT_FALSE(unverified->payload_verified);
  EXPECT_EQ(unverified->header.app_id, "com.example.app");
  EXPECT_EQ(unverified->signature.key_id, signer_->KeyId());
  PublicKey pub = signer_->Public();
  auto verified = InspectBundle(b, &pub);
  ASSERT_TRUE(verified);
  EXPECT_TRUE(verified->signature_verified);
  EXPECT_TRUE(verified->payload_verified);
}

TEST_F(BundleTest, InspectWithAKeyRefusesAFlippedPayloadByte) {
  fs::path b = Seal(app_);
  Bytes bytes = Slurp(b);
  bytes[bytes.size() - 5] ^= 0x01;  // the header and its signature are intact
  Spit(b, bytes);
  PublicKey pub = signer_->Public();
  auto r = InspectBundle(b, &pub);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  EXPECT_NE(r.error().message().find("payload digest"), std::string::npos) << r.error().message();
  // Without a key nothing is checked (and nothing claims to be).
  auto unverified = InspectBundle(b, nullptr);
  ASSERT_TRUE(unverified);
  EXPECT_FALSE(unverified->payload_verified);
}

TEST_F(BundleTest, RefusesASignedHeaderWithADuplicateKey) {
  fs::path b = Seal(app_);
  // "version" twice: a parser keeping the first value and one keeping the last would disagree
  // about what was signed.
  Resign(b, [](std::string h) { return "{\"version\":\"9.9.9\"," + h.substr(1); });
  PublicKey pub = signer_->Public();
  for (auto r : {InspectBundle(b, &pub), InspectBundle(b, nullptr)}) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
    EXPECT_NE(r.error().message().find("duplicate key \"version\""), std::string::npos)
        << r.error().message();
  }
  ExpectRefused(b, ErrorCode::kMalformed);
}

TEST_F(BundleTest, RefusesAnArchiveOfAnotherFormatThanTheSignedHeaderSays) {
  fs::path b = Seal(app_, "app.alb", ArchiveFormat::kZip);
  Resign(b, [](std::string h) {
    size_t pos = h.find("\"archive\":\"zip\"");
    EXPECT_NE(pos, std::string::npos);
    return h.replace(pos, 15, "\"archive\":\"tar\"");
  });
  fs::path dest = out_ / "refused";
  auto r = Open(b, dest);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  EXPECT_NE(r.error().message().find("archive is zip but the signed header says tar"),
            std::string::npos)
      << r.error().message();
  EXPECT_FALSE(fs::exists(dest));
  EXPECT_EQ(Leftovers(out_), 0);
}

TEST_F(BundleTest, OpenedFilesHaveTheirFinalModesAndNoStagingRemains) {
  fs::path b = Seal(app_);
  ASSERT_TRUE(Open(b, out_ / "app"));
  for (const auto& e : fs::recursive_directory_iterator(out_ / "app")) {
    auto perms = e.symlink_status().permissions();
    auto expected = e.is_directory() ? fs::perms(0755) : fs::perms(0644);
    EXPECT_EQ(perms, expected) << e.path();
  }
  EXPECT_EQ(fs::status(out_ / "app").permissions(), fs::perms(0755));
  EXPECT_EQ(Tree(out_ / "app"), Tree(app_));
  EXPECT_EQ(Leftovers(out_), 0);
}

TEST_F(BundleTest, OpenRemovesOnlyStagingLeftByAKilledRun) {
  fs::path b = Seal(app_);
  // What a SIGKILLed open leaves: a private, unlocked staging folder with plaintext in it.
  fs::path stale = out_ / (std::string(kOpenStagingPrefix) + "Ab12Cd");
  fs::create_directories(stale / "files/assets");
  WriteText(stale / "payload.archive", "plaintext");
  fs::permissions(stale, fs::perms(0700));
  // Look-alikes that are not ours to remove: another name, and a folder others may read.
  fs::path other_name = out_ / (std::string(kOpenStagingPrefix) + "Ab12Cd.keep");
  fs::path readable = out_ / (std::string(kOpenStagingPrefix) + "Zz99Zz");
  fs::create_directories(other_name);
  fs::create_directories(readable);
  fs::permissions(readable, fs::perms(0755));
  // And a live run's staging, locked by its owner.
  auto live = ScopedTempDir::Create(out_, kOpenStagingPrefix);
  ASSERT_TRUE(live);
  ASSERT_TRUE(Open(b, out_ / "app"));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(other_name));
  EXPECT_TRUE(fs::exists(readable));
  EXPECT_TRUE(fs::exists(live->path()));
  EXPECT_EQ(Tree(out_ / "app"), Tree(app_));
}

TEST(BundleHeader, ParsesOnlyValidHeaders) {
  BundleHeader h;
  h.app_id = "a.b";
  h.version = "1.0.0";
  h.created = "2026-01-01T00:00:00Z";
  h.plain_length = 10;
  h.payload_length = crypto::StreamCiphertextSize(10, h.chunk_size);
  h.payload_sha256 = std::string(64, 'a');
  h.recipients.push_back({std::string(64, 'b'), "x25519-hkdf-sha256-aes256gcm", Bytes(92, 1)});
  h.files.push_back({"index.html", 10, std::string(64, 'c')});
  nlohmann::json good = HeaderToJson(h);
  auto parse = [](const nlohmann::json& j) { return ParseHeader(AsBytes(j.dump())); };
  ASSERT_TRUE(parse(good)) << parse(good).error().ToString();

  auto expect = [&](auto mutate, ErrorCode code) {
    nlohmann::json j = good;
    mutate(j);
    auto r = parse(j);
    ASSERT_FALSE(r) << j.dump();
    EXPECT_EQ(r.error().code(), code) << r.error().ToString();
  };
  expect([](auto& j) { j["format_version"] = 2; }, ErrorCode::kUnsupported);
  expect([](auto& j) { j["format"] = "zip"; }, ErrorCode::kUnsupported);
  expect([](auto& j) { j.erase("app_id"); }, ErrorCode::kMalformed);
  expect([](auto& j) { j["version"] = "1.0"; }, ErrorCode::kMalformed);
  expect([](auto& j) { j["chunk_size"] = 16; }, ErrorCode::kUnsupported);
  expect([](auto& j) { j["payload"]["length"] = 5; }, ErrorCode::kMalformed);
  expect([](auto& j) { j["payload"]["sha256"] = "xyz"; }, ErrorCode::kMalformed);
  expect([](auto& j) { j["recipients"] = nlohmann::json::array(); }, ErrorCode::kMalformed);
  expect([](auto& j) { j["recipients"].push_back(j["recipients"][0]); }, ErrorCode::kMalformed);
  expect([](auto& j) { j["recipients"][0]["wrapped_key"] = "***"; }, ErrorCode::kMalformed);
  expect([](auto& j) { j["files"][0]["path"] = "../evil"; }, ErrorCode::kUnsafePath);
  expect([](auto& j) { j["archive"] = "rar"; }, ErrorCode::kUnsupported);
  EXPECT_EQ(ParseHeader(AsBytes("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"))
                .error()
                .code(),
            ErrorCode::kLimitExceeded);
}

}  // namespace
}  // namespace airlock::bundle
