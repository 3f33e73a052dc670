// airlock bundle seal|open|inspect: sealed bundles (docs/formats/bundle.md).
#include <iostream>
#include <memory>

#include "bundle/bundle.h"
#include "cli/commands.h"
#include "cli/key_loading.h"
#include "common/file.h"
#include "crypto/keys.h"

namespace airlock::cli {

namespace {

struct SealArgs {
  std::string input, app, version, sign_key, out, format = "zip";
  std::vector<std::string> recipients;
  size_t chunk_size = crypto::kDefaultChunkSize;
  bool json = false;
};

struct OpenArgs {
  std::string bundle, verify_key, decrypt_key, out;
  uint64_t max_unpacked = bundle::Limits{}.max_total_size;
  uint64_t max_files = bundle::Limits{}.max_files;
  bool json = false;
};

struct InspectArgs {
  std::string bundle, verify_key;
  bool json = false;
};

uint64_t TotalSize(const bundle::Manifest& m) { return bundle::ManifestTotalSize(m); }

// Runs `work` with SIGINT/SIGTERM/SIGHUP turned into an interruption (common/file.h): the work
// stops at its next block, its staging is removed on the way out, and the process then dies of the
// signal after printing the one error line.
template <typename T, typename Fn>
Result<T> Interruptible(Fn&& work) {
  InstallInterruptHandlers();
  Result<T> r = work();
  if (!r) ReraiseInterruptSignal("airlock: error: " + r.error().message() + "\n");
  return r;
}

nlohmann::json SummaryJson(const bundle::BundleHeader& h) {
  nlohmann::json recipients = nlohmann::json::array();
  for (const auto& r : h.recipients) recipients.push_back({{"key_id", r.key_id}, {"alg", r.alg}});
  return {{"app_id", h.app_id},
          {"version", h.version},
          {"created", h.created},
          {"archive", std::string(bundle::ArchiveFormatName(h.archive))},
          {"chunk_size", h.chunk_size},
          {"payload_length", h.payload_length},
          {"payload_sha256", h.payload_sha256},
          {"plain_length", h.plain_length},
          {"file_count", h.files.size()},
          {"unpacked_size", TotalSize(h.files)},
          {"recipients", recipients}};
}

Result<void> RunSeal(const SealArgs& a) {
  bundle::SealOptions options;
  options.app_id = a.app;
  options.version = a.version;
  options.chunk_size = a.chunk_size;
  AIRLOCK_ASSIGN_OR_RETURN(options.format, bundle::ParseArchiveFormat(a.format));
  KeyLoader keys;
  auto signer = keys.LoadSigner(a.sign_key);
  if (!signer) return tl::unexpected(signer.error().WithContext("signing key " + a.sign_key));
  std::vector<crypto::PublicKey> recipients;
  for (const std::string& r : a.recipients) {
    auto key = keys.LoadPublicKey(r);
    if (!key) return tl::unexpected(key.error().WithContext("recipient " + r));
    recipients.push_back(std::move(*key));
  }
  AIRLOCK_ASSIGN_OR_RETURN(bundle::BundleHeader h, Interruptible<bundle::BundleHeader>([&] {
                             return bundle::SealBundle(a.input, options, **signer, recipients,
                                                       a.out);
                           }));
  std::string signer_id = (*signer)->KeyId();
  if (a.json) {
    nlohmann::json j = SummaryJson(h);
    j["output"] = a.out;
    j["signer_key_id"] = signer_id;
    PrintJson(j);
  } else {
    std::cout << "sealed " << h.app_id << " " << h.version << ": " << h.files.size() << " files, "
              << TotalSize(h.files) << " bytes -> " << a.out << " (" << h.payload_length
              << " byte payload)\nsigned by " << signer_id << "\nencrypted to " << h.recipients.size()
              << " recipient(s)\n";
  }
  return {};
}

Result<void> RunOpen(const OpenArgs& a) {
  KeyLoader keys;
  auto verify = keys.LoadPublicKey(a.verify_key);
  if (!verify) return tl::unexpected(verify.error().WithContext("verification key " + a.verify_key));
  auto decrypt = crypto::PrivateKey::FromFile(a.decrypt_key);
  if (!decrypt) return tl::unexpected(decrypt.error().WithContext("decryption key " + a.decrypt_key));
  bundle::Limits limits;
  limits.max_total_size = a.max_unpacked;
  limits.max_files = a.max_files;
  AIRLOCK_ASSIGN_OR_RETURN(bundle::BundleHeader h, Interruptible<bundle::BundleHeader>([&] {
                             return bundle::OpenBundle(a.bundle, *verify, *decrypt, a.out, limits);
                           }));
  if (a.json) {
    nlohmann::json j = SummaryJson(h);
    j["output"] = a.out;
    j["signature"] = "verified";
    j["signer_key_id"] = verify->KeyId();
    j["files"] = bundle::ManifestToJson(h.files);
    PrintJson(j);
  } else {
    std::cout << "opened " << h.app_id << " " << h.version << " into " << a.out << "\n"
              << "signature: verified (" << verify->KeyId() << ")\n"
              << "files: " << h.files.size() << " (" << TotalSize(h.files)
              << " bytes), every size and SHA-256 verified\n";
  }
  return {};
}

Result<void> RunInspect(const InspectArgs& a) {
  std::optional<crypto::PublicKey> verify;
  if (!a.verify_key.empty()) {
    KeyLoader keys;
    auto key = keys.LoadPublicKey(a.verify_key);
    if (!key) return tl::unexpected(key.error().WithContext("verification key " + a.verify_key));
    verify = std::move(*key);
  }
  AIRLOCK_ASSIGN_OR_RETURN(bundle::BundleInfo info,
                           bundle::InspectBundle(a.bundle, verify ? &*verify : nullptr));
  const bundle::BundleHeader& h = info.header;
  std::string sig_state = info.signature_verified ? "verified" : "not verified (pass --verify-key)";
  std::string payload_state = info.payload_verified
                                  ? "verified (its SHA-256 matches the signed header's)"
                                  : "not verified (pass --verify-key)";
  if (a.json) {
    nlohmann::json j = SummaryJson(h);
    j["file_size"] = info.file_size;
    j["signer_key_id"] = info.signature.key_id;
    j["signature_scheme"] = info.signature.scheme;
    j["signature"] = info.signature_verified ? "verified" : "unverified";
    j["payload"] = info.payload_verified ? "verified" : "unverified";
    j["files"] = bundle::ManifestToJson(h.files);
    PrintJson(j);
    return {};
  }
  std::cout << "app:        " << h.app_id << "\n"
            << "version:    " << h.version << "\n"
            << "created:    " << h.created << "\n"
            << "archive:    " << bundle::ArchiveFormatName(h.archive) << ", " << h.plain_length
            << " bytes; payload " << h.payload_length << " bytes in " << h.chunk_size
            << "-byte chunks\n"
            << "payload sha256: " << h.payload_sha256 << "\n"
            << "signed by:  " << info.signature.key_id << " (" << info.signature.scheme << ")\n"
            << "signature:  " << sig_state << "\n"
            << "payload:    " << payload_state << "\n"
            << "recipients: " << h.recipients.size() << "\n";
  for (const auto& r : h.recipients) std::cout << "  " << r.key_id << " " << r.alg << "\n";
  std::cout << "files:      " << h.files.size() << " (" << TotalSize(h.files) << " bytes)\n";
  for (const auto& f : h.files) std::cout << "  " << f.sha256 << " " << f.size << " " << f.path << "\n";
  return {};
}

}  // namespace

void AddBundleCommands(CLI::App& app, Action& action) {
  CLI::App* bundle = app.add_subcommand("bundle", "Seal, open and inspect sealed bundles (.alb)");
  bundle->require_subcommand(1);

  auto seal = std::make_shared<SealArgs>();
  CLI::App* s = bundle->add_subcommand("seal", "Encrypt and sign an app folder or zip into a sealed bundle");
  s->add_option("input", seal->input, "App folder, or a zip or tar to use as the payload")->required();
  s->add_option("--app", seal->app, "App id (letters, digits, . _ -)")->required();
  s->add_option("--version", seal->version, "Release version (semver)")->required();
  s->add_option("--sign-key", seal->sign_key, "Signing key: PKCS#8 PEM file (ed25519, ecdsa-p256 or rsa) or key URI (file:VAULT#name, pkcs11:...)")->required();
  s->add_option("--recipient", seal->recipients, "Recipient public key (x25519 or rsa; SPKI PEM file or key URI), repeatable")->required();
  s->add_option("--out", seal->out, "Output .alb file")->required();
  s->add_option("--format", seal->format, "Archive format when sealing a folder")
      ->check(CLI::IsMember({"zip", "tar"}));
  s->add_option("--chunk-size", seal->chunk_size, "Encryption chunk size in bytes")
      ->check(CLI::Range(size_t{bundle::kMinChunkSize}, crypto::kMaxChunkSize));
  s->add_flag("--json", seal->json, "Print the result as JSON");
  s->callback([seal, &action] { action = [seal] { return RunSeal(*seal); }; });

  auto open = std::make_shared<OpenArgs>();
  CLI::App* o = bundle->add_subcommand("open", "Verify, decrypt and unpack a sealed bundle");
  o->add_option("bundle", open->bundle, "The .alb file")->required();
  o->add_option("--verify-key", open->verify_key, "Signer's public key (SPKI PEM file or key URI)")->required();
  o->add_option("--decrypt-key", open->decrypt_key, "Recipient private key (PKCS#8 PEM)")->required();
  o->add_option("--out", open->out, "Output folder (must not exist, or be empty)")->required();
  o->add_option("--max-unpacked-size", open->max_unpacked, "Refuse bundles that unpack to more bytes");
  o->add_option("--max-files", open->max_files, "Refuse bundles with more files");
  o->add_flag("--json", open->json, "Print the result as JSON");
  o->callback([open, &action] { action = [open] { return RunOpen(*open); }; });

  auto inspect = std::make_shared<InspectArgs>();
  CLI::App* i = bundle->add_subcommand("inspect", "Show a sealed bundle's header");
  i->add_option("bundle", inspect->bundle, "The .alb file")->required();
  i->add_option("--verify-key", inspect->verify_key,
                "Also verify the signature with this public key, and the payload against the "
                "signed SHA-256 (nothing is decrypted)");
  i->add_flag("--json", inspect->json, "Print the result as JSON");
  i->callback([inspect, &action] { action = [inspect] { return RunInspect(*inspect); }; });
}

}  // namespace airlock::cli
