#include "metadata/metadata.h"

#include <cctype>
#include <fstream>
#include <functional>
#include <iterator>

#include <gtest/gtest.h>

#include "common/file.h"
#include "crypto/hash.h"

namespace airlock::metadata {
namespace {

using nlohmann::json;

constexpr std::time_t kJan2030 = 1893456000;  // 2030-01-01T00:00:00Z

std::string TestData(const std::string& rel) {
  std::ifstream in(std::string(AIRLOCK_SOURCE_DIR) + "/src/metadata/testdata/" + rel, std::ios::binary);
  EXPECT_TRUE(in) << rel;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const crypto::PrivateKey& TestKey(int index) {
  // Index 0..3: ed25519; 4: ECDSA P-256; 5: RSA. Generated once per process.
  static std::vector<crypto::PrivateKey>* keys = [] {
    auto* v = new std::vector<crypto::PrivateKey>();
    for (int i = 0; i < 4; ++i) v->push_back(*crypto::PrivateKey::Generate(crypto::KeyType::kEd25519));
    v->push_back(*crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
    v->push_back(*crypto::PrivateKey::Generate(crypto::KeyType::kRsa));
    return v;
  }();
  return (*keys)[index];
}

// A root where role r uses TestKey(r) (root 0, targets 1, snapshot 2, timestamp 3).
Root MakeRoot(uint64_t version = 1) {
  Root root;
  root.version = version;
  root.expires = kJan2030;
  const char* names[] = {"root", "targets", "snapshot", "timestamp"};
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(root.AddKey(names[i], TestKey(i).Public()));
  return root;
}

std::string Text(const Envelope& env) {
  auto b = env.ToBytes();
  EXPECT_TRUE(b) << b.error().ToString();
  return b ? *b : std::string();
}

// Parses `text`, applies `edit` to the JSON, and returns the re-serialized text.
std::string Edit(const std::string& text, const std::function<void(json&)>& edit) {
  json j = json::parse(text);
  edit(j);
  return j.dump(1);
}

// ------------------------------------------------------------------------------------------------
// Known answers: python-tuf's published test repository (see testdata/README.md).

class PythonTufRepository : public ::testing::Test {
 protected:
  void SetUp() override {
    auto root = ParseRoot(TestData("python-tuf/root.json"));
    ASSERT_TRUE(root) << root.error().ToString();
    root_ = std::move(*root);
  }
  Metadata<Root> root_;
};

TEST_F(PythonTufRepository, ParsesRootKeysOfEveryListedType) {
  const Root& r = root_.signed_data;
  EXPECT_EQ(r.version, 1u);
  EXPECT_EQ(r.spec_version, "1.0.0");
  EXPECT_EQ(r.expires, kJan2030);
  EXPECT_FALSE(r.consistent_snapshot);
  ASSERT_EQ(r.keys.size(), 4u);
  for (const auto& [keyid, key] : r.keys) {
    EXPECT_TRUE(key.usable()) << keyid << " " << key.keytype;
    // keyid_hash_algorithms is not ours to interpret, but it is kept.
    EXPECT_TRUE(key.unrecognized_fields.contains("keyid_hash_algorithms"));
  }
  const auto& rsa = r.keys.at("4e777de0d275f9d28588dd9a1606cc748e548f9e22b6795b7cb3f63f98035fcb");
  EXPECT_EQ(rsa.public_key->type(), crypto::KeyType::kRsa);
  EXPECT_EQ(r.roles.at("timestamp").keyids,
            std::vector<std::string>{"8a1c4a3ac2d515dec982ba9910c5fd79b91ae57f625b9cff25d06bf0a61c1758"});
  // Written back, the signed object is the same as received (unknown fields included).
  EXPECT_EQ(r.ToJson(), root_.signed_json);
}

TEST_F(PythonTufRepository, VerifiesTopLevelSignaturesMadeByPythonTuf) {
  auto timestamp = ParseTimestamp(TestData("python-tuf/timestamp.json"));
  ASSERT_TRUE(timestamp) << timestamp.error().ToString();
  EXPECT_TRUE(root_.signed_data.VerifyDelegate("timestamp", *timestamp));

  auto snapshot = ParseSnapshot(TestData("python-tuf/snapshot.json"));
  ASSERT_TRUE(snapshot) << snapshot.error().ToString();
  EXPECT_TRUE(root_.signed_data.VerifyDelegate("snapshot", *snapshot));

  auto targets = ParseTargets(TestData("python-tuf/targets.json"));
  ASSERT_TRUE(targets) << targets.error().ToString();
  EXPECT_TRUE(root_.signed_data.VerifyDelegate("targets", *targets));

  // Signed by the right key but for another role: refused.
  auto wrong = root_.signed_data.VerifyDelegate("snapshot", *timestamp);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kBadSignature);
  EXPECT_EQ(wrong.error().message(), "snapshot: 0 of 1 required signatures");
}

TEST_F(PythonTufRepository, SnapshotBytesMatchTimestampMeta) {
  auto timestamp = ParseTimestamp(TestData("python-tuf/timestamp.json"));
  ASSERT_TRUE(timestamp);
  const MetaFile& meta = timestamp->signed_data.snapshot_meta;
  EXPECT_EQ(meta.version, 1u);
  EXPECT_EQ(meta.length, 515u);
  std::string snapshot = TestData("python-tuf/snapshot.json");
  EXPECT_TRUE(meta.Verify(AsBytes(snapshot)));
  snapshot += " ";
  auto bad = meta.Verify(AsBytes(snapshot));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kHashMismatch);
}

TEST_F(PythonTufRepository, VerifiesDelegatedRoleAndReadsTargets) {
  auto targets = ParseTargets(TestData("python-tuf/targets.json"));
  ASSERT_TRUE(targets);
  const Targets& t = targets->signed_data;
  ASSERT_EQ(t.targets.size(), 2u);
  EXPECT_EQ(t.targets.at("file1.txt").length, 31u);
  EXPECT_EQ(t.targets.at("file1.txt").custom, json({{"file_permissions", "0644"}}));
  EXPECT_FALSE(t.targets.at("file2.txt").custom.has_value());
  ASSERT_TRUE(t.delegations);
  EXPECT_EQ(t.delegations->RolesForTarget("file3.txt"),
            (std::vector<std::pair<std::string, bool>>{{"role1", false}}));
  EXPECT_TRUE(t.delegations->RolesForTarget("file1.txt").empty());

  auto role1 = ParseTargets(TestData("python-tuf/role1.json"));
  ASSERT_TRUE(role1) << role1.error().ToString();
  EXPECT_TRUE(t.VerifyDelegate("role1", *role1));
  auto missing = t.VerifyDelegate("role2", *role1);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(role1->signed_data.targets.at("file3.txt").hashes.size(), 2u);
}

TEST_F(PythonTufRepository, TamperedSignedContentFailsVerification) {
  std::string text = Edit(TestData("python-tuf/timestamp.json"),
                          [](json& j) { j["signed"]["version"] = 2; });
  auto timestamp = ParseTimestamp(text);
  ASSERT_TRUE(timestamp);
  auto r = root_.signed_data.VerifyDelegate("timestamp", *timestamp);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);

  // An unknown field added to "signed" is covered by the signature too.
  text = Edit(TestData("python-tuf/timestamp.json"), [](json& j) { j["signed"]["x-extra"] = "1"; });
  timestamp = ParseTimestamp(text);
  ASSERT_TRUE(timestamp);
  EXPECT_EQ(timestamp->signed_data.unrecognized_fields, json({{"x-extra", "1"}}));
  r = root_.signed_data.VerifyDelegate("timestamp", *timestamp);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
}

TEST_F(PythonTufRepository, ReformattedJsonStillVerifies) {
  // Signatures are over canonical JSON, so whitespace and member order in the file do not matter.
  std::string text = json::parse(TestData("python-tuf/snapshot.json")).dump();
  auto snapshot = ParseSnapshot(text);
  ASSERT_TRUE(snapshot);
  EXPECT_TRUE(root_.signed_data.VerifyDelegate("snapshot", *snapshot));
}

// ------------------------------------------------------------------------------------------------
// Writing and round trips

TEST(MetadataRoundTrip, Root) {
  Root root = MakeRoot(3);
  root.consistent_snapshot = true;
  root.roles["root"].threshold = 1;
  root.unrecognized_fields["x-airlock"] = json({{"app", "demo"}});
  auto md = SignMetadata(root, {&TestKey(0)});
  ASSERT_TRUE(md) << md.error().ToString();
  auto parsed = ParseRoot(Text(*md));
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  const Root& r = parsed->signed_data;
  EXPECT_EQ(r.version, 3u);
  EXPECT_EQ(r.expires, kJan2030);
  EXPECT_EQ(r.spec_version, kSpecVersion);
  EXPECT_TRUE(r.consistent_snapshot);
  EXPECT_EQ(r.keys.size(), 4u);
  EXPECT_EQ(r.roles.at("snapshot").keyids, std::vector<std::string>{TestKey(2).KeyId()});
  EXPECT_EQ(r.unrecognized_fields["x-airlock"]["app"], "demo");
  EXPECT_EQ(r.ToJson(), parsed->signed_json);
  EXPECT_TRUE(r.VerifyDelegate("root", *parsed));
  ASSERT_EQ(parsed->signatures.size(), 1u);
  EXPECT_EQ(parsed->signatures[0].keyid, TestKey(0).KeyId());
  EXPECT_EQ(parsed->signatures[0].sig.size(), 128u);  // hex of a 64-byte ed25519 signature
}

TEST(MetadataRoundTrip, TargetsWithDelegations) {
  Targets targets;
  targets.version = 7;
  targets.expires = kJan2030;
  std::string content = "bundle bytes";
  TargetFile file = TargetFile::FromData(AsBytes(content), /*with_sha512=*/true);
  file.custom = json({{"version", "1.2.3"}, {"channels", {"stable"}}, {"security_floor", 4}});
  targets.targets["app/1.2.3/bundle.tar"] = file;
  Delegations d;
  DelegatedRole a;
  a.name = "apps";
  a.threshold = 1;
  a.terminating = true;
  a.paths = std::vector<std::string>{"app/*/*.tar"};
  DelegatedRole b;
  b.name = "bins";
  b.path_hash_prefixes = std::vector<std::string>{"00", "8f"};
  d.roles = {a, b};
  targets.delegations = d;
  ASSERT_TRUE(targets.delegations->AddKey("apps", TestKey(4).Public()));
  ASSERT_TRUE(targets.delegations->AddKey("bins", TestKey(5).Public()));
  auto missing = targets.delegations->AddKey("nope", TestKey(5).Public());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);

  auto md = SignMetadata(targets, {&TestKey(1)});
  ASSERT_TRUE(md);
  auto parsed = ParseTargets(Text(*md));
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  const Targets& t = parsed->signed_data;
  EXPECT_EQ(t.version, 7u);
  const TargetFile& f = t.targets.at("app/1.2.3/bundle.tar");
  EXPECT_EQ(f.length, content.size());
  EXPECT_EQ(f.hashes.size(), 2u);
  EXPECT_EQ((*f.custom)["security_floor"], 4);
  EXPECT_TRUE(f.Verify(AsBytes(content)));
  ASSERT_TRUE(t.delegations);
  ASSERT_EQ(t.delegations->roles.size(), 2u);
  EXPECT_EQ(t.delegations->roles[0].name, "apps");
  EXPECT_TRUE(t.delegations->roles[0].terminating);
  EXPECT_FALSE(t.delegations->roles[0].path_hash_prefixes.has_value());
  EXPECT_EQ(t.delegations->roles[1].name, "bins");
  EXPECT_FALSE(t.delegations->roles[1].paths.has_value());
  EXPECT_EQ(t.delegations->keys.size(), 2u);
  EXPECT_EQ(t.ToJson(), parsed->signed_json);

  // Delegated roles signed with ECDSA and RSA verify through the delegation.
  Targets apps;
  apps.expires = kJan2030;
  auto apps_md = SignMetadata(apps, {&TestKey(4)});
  ASSERT_TRUE(apps_md);
  auto apps_parsed = ParseTargets(Text(*apps_md));
  ASSERT_TRUE(apps_parsed);
  EXPECT_TRUE(t.VerifyDelegate("apps", *apps_parsed));
  auto wrong = t.VerifyDelegate("bins", *apps_parsed);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kBadSignature);
  auto bins_md = SignMetadata(apps, {&TestKey(5)});
  ASSERT_TRUE(bins_md);
  EXPECT_TRUE(t.VerifyDelegate("bins", *ParseTargets(Text(*bins_md))));
}

TEST(MetadataRoundTrip, Snapshot) {
  Snapshot snapshot;
  snapshot.version = 12;
  snapshot.expires = kJan2030 - 3600;
  MetaFile targets_meta;
  targets_meta.version = 5;
  snapshot.meta["targets.json"] = targets_meta;
  MetaFile role_meta;
  role_meta.version = 2;
  role_meta.length = 1234;
  role_meta.hashes = Hashes{{"sha256", std::string(64, 'a')}};
  snapshot.meta["apps.json"] = role_meta;
  auto md = SignMetadata(snapshot, {&TestKey(2)});
  ASSERT_TRUE(md);
  auto parsed = ParseSnapshot(Text(*md));
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  const Snapshot& s = parsed->signed_data;
  EXPECT_EQ(s.version, 12u);
  EXPECT_EQ(s.expires, kJan2030 - 3600);
  EXPECT_EQ(s.meta.at("targets.json").version, 5u);
  EXPECT_FALSE(s.meta.at("targets.json").length.has_value());
  EXPECT_FALSE(s.meta.at("targets.json").hashes.has_value());
  EXPECT_EQ(s.meta.at("apps.json").length, 1234u);
  EXPECT_EQ(s.ToJson(), parsed->signed_json);
  EXPECT_TRUE(MakeRoot().VerifyDelegate("snapshot", *parsed));
}

TEST(MetadataRoundTrip, Timestamp) {
  Timestamp ts;
  ts.version = 99;
  ts.expires = kJan2030;
  ts.snapshot_meta.version = 12;
  std::string snapshot_bytes = "{}";
  ts.snapshot_meta.length = snapshot_bytes.size();
  ts.snapshot_meta.hashes = Hashes{{"sha256", HexEncode(crypto::Sha256(AsBytes(snapshot_bytes)))}};
  auto md = SignMetadata(ts, {&TestKey(3)});
  ASSERT_TRUE(md);
  std::string text = Text(*md);
  auto parsed = ParseTimestamp(text);
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  EXPECT_EQ(parsed->signed_data.version, 99u);
  EXPECT_EQ(parsed->signed_data.snapshot_meta.version, 12u);
  EXPECT_TRUE(parsed->signed_data.snapshot_meta.Verify(AsBytes(snapshot_bytes)));
  EXPECT_TRUE(MakeRoot().VerifyDelegate("timestamp", *parsed));
  // The file is JSON any TUF client reads: an object with signatures and signed.
  json j = json::parse(text);
  EXPECT_EQ(j["signed"]["_type"], "timestamp");
  EXPECT_EQ(j["signed"]["expires"], "2030-01-01T00:00:00Z");
  EXPECT_EQ(j["signed"]["meta"]["snapshot.json"]["version"], 12);
}

TEST(MetadataWriting, SignReplacesSignatureOfSameKeyAndRebuildDropsSignatures) {
  Metadata<Timestamp> md(Timestamp{});
  md.signed_data.expires = kJan2030;
  md.Rebuild();
  ASSERT_TRUE(md.Sign(TestKey(3)));
  ASSERT_TRUE(md.Sign(TestKey(3)));
  EXPECT_EQ(md.signatures.size(), 1u);
  ASSERT_TRUE(md.Sign(TestKey(0)));
  EXPECT_EQ(md.signatures.size(), 2u);
  md.signed_data.version = 2;
  md.Rebuild();
  EXPECT_TRUE(md.signatures.empty());
  EXPECT_EQ(md.signed_json["version"], 2);
}

TEST(MetadataWriting, KeyJsonMatchesCryptoTufJson) {
  for (int i : {0, 4, 5}) {
    crypto::PublicKey pub = TestKey(i).Public();
    Key key = Key::FromPublicKey(pub);
    EXPECT_EQ(key.ToJson(), pub.TufJson());
    auto back = Key::FromJson(key.ToJson());
    ASSERT_TRUE(back);
    ASSERT_TRUE(back->usable()) << key.keytype;
    EXPECT_TRUE(back->public_key->Equals(pub));
  }
}

// ------------------------------------------------------------------------------------------------
// Thresholds

class Thresholds : public ::testing::Test {
 protected:
  // A root whose root role is keys 0 and 1 with threshold 2.
  void SetUp() override {
    root_ = MakeRoot();
    ASSERT_TRUE(root_.AddKey("root", TestKey(1).Public()));
    root_.roles["root"].threshold = 2;
  }
  Result<void> VerifySignedBy(const std::vector<const crypto::PrivateKey*>& keys) {
    auto md = SignMetadata(root_, keys);
    EXPECT_TRUE(md);
    return root_.VerifyDelegate("root", *md);
  }
  Root root_;
};

TEST_F(Thresholds, MetWithDistinctAuthorizedKeys) {
  EXPECT_TRUE(VerifySignedBy({&TestKey(0), &TestKey(1)}));
}

TEST_F(Thresholds, OneSignatureShortIsRefusedWithCount) {
  auto r = VerifySignedBy({&TestKey(0)});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
  EXPECT_EQ(r.error().message(), "root: 1 of 2 required signatures");
}

// The specification makes key ids in "signatures" unique. A threshold-2 role "signed" twice by the
// same key is refused as malformed at parse time (as python-tuf's and tuf-js's Metadata.from_dict),
// never counted as one signature short.
TEST_F(Thresholds, SameKeyIdTwiceForThresholdTwoIsRefusedAtParse) {
  auto md = SignMetadata(root_, {&TestKey(0)});
  ASSERT_TRUE(md);
  md->signatures.push_back(md->signatures[0]);
  const std::string text = Text(*md);
  auto parsed = ParseRoot(text);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code(), ErrorCode::kMalformed);
  EXPECT_NE(parsed.error().ToString().find("signatures list key id " + TestKey(0).KeyId() +
                                           " more than once"),
            std::string::npos)
      << parsed.error().ToString();
  // Nothing to verify, and the same rule holds for an envelope built in memory.
  auto r = root_.VerifyDelegate("root", *md);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
}

// Decision: a repeated key id is refused even when the other signatures meet the threshold
// (python-tuf refuses the document before counting anything; so do we).
TEST_F(Thresholds, RepeatedKeyIdIsRefusedEvenWhenThresholdIsMet) {
  auto md = SignMetadata(root_, {&TestKey(0), &TestKey(1)});
  ASSERT_TRUE(md);
  ASSERT_TRUE(root_.VerifyDelegate("root", *md));
  md->signatures.push_back(md->signatures[1]);
  auto parsed = ParseRoot(Text(*md));
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code(), ErrorCode::kMalformed);
  auto r = VerifyRole(*md, root_.keys, root_.roles["root"].keyids, 2, "root");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  EXPECT_EQ(r.error().message(),
            "root: signatures list key id " + TestKey(1).KeyId() + " more than once");
  // A repeat with a different (garbage) signature value is the same key id listed twice.
  md->signatures.back().sig = "00";
  parsed = ParseRoot(Text(*md));
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code(), ErrorCode::kMalformed);
}

TEST_F(Thresholds, SignatureByUnauthorizedKeyDoesNotCount) {
  // Key 2 is in root's keys (snapshot), but not a root key.
  auto r = VerifySignedBy({&TestKey(0), &TestKey(2)});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
  // Key 5 is not listed at all.
  r = VerifySignedBy({&TestKey(0), &TestKey(5)});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
}

TEST_F(Thresholds, SignatureUnderWrongKeyIdDoesNotCount) {
  auto md = SignMetadata(root_, {&TestKey(0), &TestKey(1)});
  ASSERT_TRUE(md);
  // Key 1's signature relabelled as key 2's (listed, not a root key, so it cannot count either).
  md->signatures[1].keyid = TestKey(2).KeyId();
  auto r = root_.VerifyDelegate("root", *md);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "root: 1 of 2 required signatures");
  // Key 1's signature relabelled as key 0's: refused outright (key 0 listed twice).
  md->signatures[1].keyid = md->signatures[0].keyid;
  r = root_.VerifyDelegate("root", *md);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
}

TEST_F(Thresholds, UndecodableSignatureParsesButDoesNotCount) {
  auto md = SignMetadata(root_, {&TestKey(0), &TestKey(1)});
  ASSERT_TRUE(md);
  md->signatures[1].sig = "zz-not-hex";
  auto parsed = ParseRoot(Text(*md));
  ASSERT_TRUE(parsed);
  auto r = root_.VerifyDelegate("root", *parsed);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
}

TEST_F(Thresholds, UnknownKeyTypeIsParsedButNeverCounted) {
  auto md = SignMetadata(root_, {&TestKey(0), &TestKey(1)});
  ASSERT_TRUE(md);
  std::string keyid1 = TestKey(1).KeyId();
  std::string text = Edit(Text(*md), [&](json& j) {
    j["signed"]["keys"]["abcdef"] = {{"keytype", "sphincs"}, {"scheme", "sphincs-shake-256f"},
                                     {"keyval", {{"public", "00"}}}};
    j["signed"]["roles"]["root"]["keyids"].push_back("abcdef");
    // Key 1 with a scheme we do not support: must not count even though its signature is valid.
    j["signed"]["keys"][keyid1]["scheme"] = "ed25519-ph";
  });
  auto parsed = ParseRoot(text);
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  // Re-sign the edited signed object as received (unknown key included) with keys 0 and 1.
  parsed->signatures.clear();
  ASSERT_TRUE(parsed->Sign(TestKey(0)));
  ASSERT_TRUE(parsed->Sign(TestKey(1)));
  const Root& r = parsed->signed_data;
  EXPECT_FALSE(r.keys.at("abcdef").usable());
  EXPECT_FALSE(r.keys.at(keyid1).usable());
  EXPECT_EQ(CountValidSignatures(*parsed, r.keys, r.roles.at("root").keyids), 1u);
  auto v = r.VerifyDelegate("root", *parsed);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), ErrorCode::kBadSignature);
  EXPECT_EQ(v.error().message(), "root: 1 of 2 required signatures");
}

TEST_F(Thresholds, SameKeyUnderTwoKeyIdsCountsOnce) {
  std::string keyid0 = TestKey(0).KeyId();
  Root root = root_;
  // List key 0 a second time under another id, instead of key 1.
  root.keys["alias"] = root.keys.at(keyid0);
  root.roles["root"].keyids = {keyid0, "alias"};
  Metadata<Root> md(root);
  ASSERT_TRUE(md.Sign(TestKey(0)));
  Signature alias = md.signatures[0];
  alias.keyid = "alias";
  md.signatures.push_back(alias);
  auto r = root.VerifyDelegate("root", md);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "root: 1 of 2 required signatures");
}

TEST_F(Thresholds, LegacyEcdsaKeyTypeIsAccepted) {
  crypto::PublicKey pub = TestKey(4).Public();
  json key = pub.TufJson();
  key["keytype"] = "ecdsa-sha2-nistp256";
  auto parsed = Key::FromJson(key);
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(parsed->usable());
  // A P-256 PEM under the RSA scheme is not usable.
  key["keytype"] = "rsa";
  key["scheme"] = "rsassa-pss-sha256";
  parsed = Key::FromJson(key);
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->usable());
}

TEST(VerifyRole, ZeroThresholdIsNeverMet) {
  Metadata<Timestamp> md(Timestamp{});
  auto r = VerifyRole(md, {}, {}, 0, "timestamp");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
}

TEST(VerifyRole, TopLevelNameRequired) {
  Root root = MakeRoot();
  Metadata<Root> md(root);
  auto r = root.VerifyDelegate("apps", md);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

// ------------------------------------------------------------------------------------------------
// Parsing rules

std::string SignedTimestampText() {
  Timestamp ts;
  ts.expires = kJan2030;
  ts.snapshot_meta.version = 1;
  auto md = SignMetadata(ts, {&TestKey(3)});
  EXPECT_TRUE(md);
  return Text(*md);
}

void ExpectParseError(const std::string& text, ErrorCode code) {
  auto r = ParseTimestamp(text);
  ASSERT_FALSE(r) << text;
  EXPECT_EQ(r.error().code(), code) << r.error().ToString();
}

TEST(MetadataParse, WrongTypeIsRefused) {
  std::string text = SignedTimestampText();
  auto as_root = ParseRoot(text);
  ASSERT_FALSE(as_root);
  EXPECT_EQ(as_root.error().code(), ErrorCode::kUnsupported);
  auto as_snapshot = ParseSnapshot(text);
  ASSERT_FALSE(as_snapshot);
  EXPECT_EQ(as_snapshot.error().code(), ErrorCode::kUnsupported);
}

TEST(MetadataParse, SpecVersion) {
  std::string base = SignedTimestampText();
  ExpectParseError(Edit(base, [](json& j) { j["signed"]["spec_version"] = "2.0.0"; }),
                   ErrorCode::kUnsupported);
  ExpectParseError(Edit(base, [](json& j) { j["signed"]["spec_version"] = "0.9.0"; }),
                   ErrorCode::kUnsupported);
  ExpectParseError(Edit(base, [](json& j) { j["signed"]["spec_version"] = "1.x"; }),
                   ErrorCode::kMalformed);
  ExpectParseError(Edit(base, [](json& j) { j["signed"]["spec_version"] = "1"; }),
                   ErrorCode::kMalformed);
  ExpectParseError(Edit(base, [](json& j) { j["signed"]["spec_version"] = 1; }),
                   ErrorCode::kMalformed);
  EXPECT_TRUE(ParseTimestamp(Edit(base, [](json& j) { j["signed"]["spec_version"] = "1.0"; })));
  EXPECT_TRUE(ParseTimestamp(Edit(base, [](json& j) { j["signed"]["spec_version"] = "1.31.7"; })));
}

TEST(MetadataParse, OversizeIsRefused) {
  std::string base = SignedTimestampText();
  std::string big = Edit(base, [](json& j) { j["signed"]["pad"] = std::string(kMaxTimestampSize, 'x'); });
  ExpectParseError(big, ErrorCode::kLimitExceeded);
  // Within an explicit larger bound it parses.
  EXPECT_TRUE(ParseTimestamp(big, 2 * kMaxTimestampSize));
  auto small = ParseTimestamp(base, 10);
  ASSERT_FALSE(small);
  EXPECT_EQ(small.error().code(), ErrorCode::kLimitExceeded);
}

TEST(MetadataParse, DeepNestingIsRefused) {
  std::string base = SignedTimestampText();
  json deep = 1;
  for (int i = 0; i < 40; ++i) deep = json::array({deep});
  ExpectParseError(Edit(base, [&](json& j) { j["signed"]["deep"] = deep; }), ErrorCode::kLimitExceeded);
}

TEST(MetadataParse, FloatAnywhereInSignedIsMalformed) {
  std::string base = SignedTimestampText();
  ExpectParseError(Edit(base, [](json& j) { j["signed"]["x"] = {{"y", 1.5}}; }), ErrorCode::kMalformed);
  ExpectParseError(Edit(base, [](json& j) { j["signed"]["version"] = 1.0; }), ErrorCode::kMalformed);
}

TEST(MetadataParse, StrictShapes) {
  std::string base = SignedTimestampText();
  auto expect = [&](std::function<void(json&)> edit, ErrorCode code) {
    ExpectParseError(Edit(base, edit), code);
  };
  expect([](json& j) { j["signed"]["version"] = 0; }, ErrorCode::kMalformed);
  expect([](json& j) { j["signed"]["version"] = -1; }, ErrorCode::kMalformed);
  expect([](json& j) { j["signed"]["version"] = "1"; }, ErrorCode::kMalformed);
  expect([](json& j) { j["signed"].erase("expires"); }, ErrorCode::kMalformed);
  expect([](json& j) { j["signed"]["expires"] = "2030-01-01 00:00:00"; }, ErrorCode::kMalformed);
  expect([](json& j) { j["signed"]["expires"] = "2030-02-30T00:00:00Z"; }, ErrorCode::kMalformed);
  expect([](json& j) { j["signed"]["expires"] = 1893456000; }, ErrorCode::kMalformed);
  expect([](json& j) { j["signed"]["_type"] = 1; }, ErrorCode::kMalformed);
  expect([](json& j) { j["signed"]["meta"] = json::object(); }, ErrorCode::kMalformed);
  expect([](json& j) { j["signed"]["meta"]["snapshot.json"]["length"] = "5"; }, ErrorCode::kMalformed);
  expect([](json& j) { j["signed"]["meta"]["snapshot.json"]["hashes"] = json::object(); },
         ErrorCode::kMalformed);
  expect([](json& j) { j["signatures"] = json::object(); }, ErrorCode::kMalformed);
  expect([](json& j) { j["signatures"][0]["sig"] = 5; }, ErrorCode::kMalformed);
  expect([](json& j) { j.erase("signed"); }, ErrorCode::kMalformed);
  ExpectParseError("[]", ErrorCode::kMalformed);
  ExpectParseError("{\"signatures\": [], \"signed\": {", ErrorCode::kMalformed);
  ExpectParseError("", ErrorCode::kMalformed);
  // Unknown envelope members are kept.
  auto extra = ParseTimestamp(Edit(base, [](json& j) { j["x-envelope"] = true; }));
  ASSERT_TRUE(extra);
  EXPECT_EQ(extra->unrecognized_fields, json({{"x-envelope", true}}));
  EXPECT_EQ(extra->ToJson()["x-envelope"], true);
}

TEST(MetadataParse, RootShapes) {
  auto md = SignMetadata(MakeRoot(), {&TestKey(0)});
  ASSERT_TRUE(md);
  std::string base = Text(*md);
  auto expect = [&](std::function<void(json&)> edit, ErrorCode code) {
    auto r = ParseRoot(Edit(base, edit));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), code) << r.error().ToString();
  };
  expect([](json& j) { j["signed"]["roles"].erase("timestamp"); }, ErrorCode::kMalformed);
  expect([](json& j) { j["signed"]["roles"]["mirrors"] = j["signed"]["roles"]["root"]; },
         ErrorCode::kMalformed);
  expect([](json& j) { j["signed"]["roles"]["root"]["threshold"] = 0; }, ErrorCode::kMalformed);
  expect([](json& j) {
    auto& ids = j["signed"]["roles"]["root"]["keyids"];
    ids.push_back(ids[0]);
  }, ErrorCode::kMalformed);
  expect([](json& j) { j["signed"]["consistent_snapshot"] = "yes"; }, ErrorCode::kMalformed);
  expect([](json& j) {
    for (auto& [id, key] : j["signed"]["keys"].items()) key["keyval"].erase("public");
  }, ErrorCode::kMalformed);
  // consistent_snapshot may be absent (python-tuf writes it optionally).
  auto no_cs = ParseRoot(Edit(base, [](json& j) { j["signed"].erase("consistent_snapshot"); }));
  ASSERT_TRUE(no_cs);
  EXPECT_FALSE(no_cs->signed_data.consistent_snapshot);
}

TEST(MetadataParse, DelegationShapes) {
  Targets t;
  t.expires = kJan2030;
  Delegations d;
  DelegatedRole r;
  r.name = "apps";
  r.paths = std::vector<std::string>{"*"};
  d.roles.push_back(r);
  t.delegations = d;
  auto md = SignMetadata(t, {&TestKey(1)});
  ASSERT_TRUE(md);
  std::string base = Text(*md);
  ASSERT_TRUE(ParseTargets(base));
  auto expect = [&](std::function<void(json&)> edit, ErrorCode code) {
    auto r = ParseTargets(Edit(base, edit));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), code) << r.error().ToString();
  };
  auto role0 = [](json& j) -> json& { return j["signed"]["delegations"]["roles"][0]; };
  expect([&](json& j) { role0(j)["path_hash_prefixes"] = json::array({"ab"}); }, ErrorCode::kMalformed);
  expect([&](json& j) { role0(j).erase("paths"); }, ErrorCode::kMalformed);
  expect([&](json& j) { role0(j).erase("terminating"); }, ErrorCode::kMalformed);
  expect([&](json& j) { role0(j)["name"] = "snapshot"; }, ErrorCode::kMalformed);
  expect([&](json& j) { role0(j)["paths"] = json::array({1}); }, ErrorCode::kMalformed);
  expect([&](json& j) {
    j["signed"]["delegations"]["roles"].push_back(role0(j));
  }, ErrorCode::kMalformed);
  expect([](json& j) {
    j["signed"]["delegations"]["succinct_roles"] = json::object();
  }, ErrorCode::kUnsupported);
  expect([](json& j) { j["signed"]["targets"]["a"] = {{"length", 1}}; }, ErrorCode::kMalformed);
  expect([](json& j) { j["signed"]["targets"]["a"] = {{"length", 1}, {"hashes", json::object()}}; },
         ErrorCode::kMalformed);
  // Empty paths are allowed (they match nothing).
  auto empty = ParseTargets(Edit(base, [&](json& j) { role0(j)["paths"] = json::array(); }));
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->signed_data.delegations->RolesForTarget("x").empty());
}

TEST(TufTime, ParsesAndFormats) {
  EXPECT_EQ(*ParseTufTime("2030-01-01T00:00:00Z"), kJan2030);
  EXPECT_EQ(*ParseTufTime("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseTufTime("2030-01-01T00:00:00.123Z"), kJan2030);  // JavaScript toISOString
  EXPECT_EQ(*ParseTufTime("2024-02-29T12:34:56Z"), 1709210096);
  EXPECT_EQ(FormatTufTime(kJan2030), "2030-01-01T00:00:00Z");
  EXPECT_EQ(FormatTufTime(1709210096), "2024-02-29T12:34:56Z");
  for (const char* bad : {"2030-01-01T00:00:00", "2030-01-01T00:00:00+00:00", "2030-1-01T00:00:00Z",
                          "2023-02-29T00:00:00Z", "2030-13-01T00:00:00Z", "2030-01-01T24:00:00Z",
                          "2030-01-01T00:00:00.Z", "2030-01-01t00:00:00Z", "", "Z"}) {
    auto r = ParseTufTime(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  }
}

// ------------------------------------------------------------------------------------------------
// Workflow checks

TEST(CheckExpiry, ExpiredAtAndAfterTheInstant) {
  Timestamp ts;
  ts.expires = kJan2030;
  EXPECT_TRUE(CheckExpiry(ts, kJan2030 - 1, "timestamp"));
  auto r = CheckExpiry(ts, kJan2030, "timestamp");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kExpired);
  EXPECT_EQ(r.error().message(), "timestamp expired at 2030-01-01T00:00:00Z");
  EXPECT_EQ(CheckExpiry(ts, kJan2030 + 86400, "timestamp").error().code(), ErrorCode::kExpired);
  EXPECT_TRUE(IsVerificationFailure(ErrorCode::kExpired));
}

TEST(CheckNoRollback, LowerVersionIsRollback) {
  EXPECT_TRUE(CheckNoRollback(5, 5, "snapshot"));
  EXPECT_TRUE(CheckNoRollback(5, 6, "snapshot"));
  auto r = CheckNoRollback(5, 4, "snapshot");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kRollback);
  EXPECT_TRUE(IsVerificationFailure(ErrorCode::kRollback));
}

class RootRotation : public ::testing::Test {
 protected:
  void SetUp() override {
    auto v1 = SignMetadata(MakeRoot(1), {&TestKey(0)});
    ASSERT_TRUE(v1);
    v1_ = std::move(*v1);
    // v2 rotates the root key from key 0 to key 5 (RSA).
    v2_ = MakeRoot(2);
    ASSERT_TRUE(v2_.RevokeKey("root", TestKey(0).KeyId()));
    ASSERT_TRUE(v2_.AddKey("root", TestKey(5).Public()));
  }
  Result<void> Rotate(const Root& next, const std::vector<const crypto::PrivateKey*>& keys) {
    auto md = SignMetadata(next, keys);
    EXPECT_TRUE(md);
    auto parsed = ParseRoot(Text(*md));
    EXPECT_TRUE(parsed);
    return VerifyRootRotation(v1_, *parsed);
  }
  Metadata<Root> v1_;
  Root v2_;
};

TEST_F(RootRotation, SignedByOldAndNewThresholdsIsAccepted) {
  EXPECT_FALSE(v2_.keys.count(TestKey(0).KeyId()));  // revoked and unused elsewhere: dropped
  EXPECT_TRUE(Rotate(v2_, {&TestKey(0), &TestKey(5)}));
}

TEST_F(RootRotation, MissingOldThresholdIsRefused) {
  auto r = Rotate(v2_, {&TestKey(5)});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
  EXPECT_NE(r.error().message().find("trusted root v1"), std::string::npos) << r.error().message();
}

TEST_F(RootRotation, MissingNewThresholdIsRefused) {
  auto r = Rotate(v2_, {&TestKey(0)});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
  EXPECT_NE(r.error().message().find("its own keys"), std::string::npos) << r.error().message();
}

TEST_F(RootRotation, VersionMustBeNext) {
  Root v3 = v2_;
  v3.version = 3;
  auto r = Rotate(v3, {&TestKey(0), &TestKey(5)});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kRollback);
  Root same = MakeRoot(1);
  r = Rotate(same, {&TestKey(0)});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kRollback);
}

TEST_F(RootRotation, RevokeUnknownKeyIsNotFound) {
  auto r = v2_.RevokeKey("root", "nope");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  // A key still used by another role stays in keys.
  Root root = MakeRoot();
  ASSERT_TRUE(root.AddKey("snapshot", TestKey(3).Public()));
  ASSERT_TRUE(root.RevokeKey("snapshot", TestKey(3).KeyId()));
  EXPECT_TRUE(root.keys.count(TestKey(3).KeyId()));
}

// ------------------------------------------------------------------------------------------------
// Target length and hashes

TEST(TargetVerify, LengthAndHashes) {
  std::string data = "hello, airlock";
  TargetFile file = TargetFile::FromData(AsBytes(data), /*with_sha512=*/true);
  EXPECT_TRUE(file.Verify(AsBytes(data)));

  std::string flipped = data;
  flipped[0] ^= 1;
  auto r = file.Verify(AsBytes(flipped));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);

  r = file.Verify(AsBytes(data + "!"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  r = file.Verify(AsBytes(data.substr(1)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);

  // sha256 right, sha512 wrong: refused.
  TargetFile half = file;
  half.hashes["sha512"] = std::string(128, '0');
  r = half.Verify(AsBytes(data));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  EXPECT_EQ(r.error().message(), "sha512 does not match");

  // Unknown algorithms are skipped when a known one is present...
  TargetFile extra = file;
  extra.hashes["blake2b-256"] = "00";
  EXPECT_TRUE(extra.Verify(AsBytes(data)));
  // ...but at least one known algorithm is required.
  TargetFile unknown;
  unknown.length = data.size();
  unknown.hashes["md5"] = "00";
  r = unknown.Verify(AsBytes(data));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  TargetFile none;
  none.length = data.size();
  EXPECT_EQ(none.Verify(AsBytes(data)).error().code(), ErrorCode::kHashMismatch);

  // Upper-case hex in metadata is accepted.
  TargetFile upper = TargetFile::FromData(AsBytes(data));
  for (auto& c : upper.hashes["sha256"]) c = static_cast<char>(std::toupper(c));
  EXPECT_TRUE(upper.Verify(AsBytes(data)));
}

TEST(TargetVerify, StreamingStopsAtDeclaredLength) {
  std::string data(1000, 'z');
  TargetFile file = TargetFile::FromData(AsBytes(data));
  auto v = LengthAndHashVerifier::Create(file.length, file.hashes);
  ASSERT_TRUE(v);
  ASSERT_TRUE(v->Update(AsBytes(std::string_view(data).substr(0, 600))));
  ASSERT_TRUE(v->Update(AsBytes(std::string_view(data).substr(600))));
  EXPECT_EQ(v->bytes_seen(), 1000u);
  EXPECT_TRUE(v->Finish());

  auto endless = LengthAndHashVerifier::Create(file.length, file.hashes);
  ASSERT_TRUE(endless);
  ASSERT_TRUE(endless->Update(AsBytes(data)));
  auto r = endless->Update(AsBytes("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);

  // MetaFile without length or hashes (snapshot's usual entries): nothing to check.
  MetaFile meta;
  EXPECT_TRUE(meta.Verify(AsBytes(data)));
}

TEST(TargetVerify, File) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir);
  std::string data(200000, 'q');
  auto path = dir->path() / "t.bin";
  ASSERT_TRUE(WriteFileAtomic(path, AsBytes(data)));
  TargetFile file = TargetFile::FromData(AsBytes(data), true);
  EXPECT_TRUE(file.VerifyFile(path));
  file.length += 1;
  EXPECT_EQ(file.VerifyFile(path).error().code(), ErrorCode::kHashMismatch);
  EXPECT_EQ(file.VerifyFile(dir->path() / "missing").error().code(), ErrorCode::kNotFound);
}

TEST(ConsistentTargetPath, PrefixesBaseName) {
  EXPECT_EQ(ConsistentTargetPath("a/b/c.txt", "abc"), "a/b/abc.c.txt");
  EXPECT_EQ(ConsistentTargetPath("c.txt", "abc"), "abc.c.txt");
}

}  // namespace
}  // namespace airlock::metadata
