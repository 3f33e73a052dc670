// `airlock capgo encrypt|decrypt|keygen`: Capgo encryption v2 bundles for unmodified
// @capgo/capacitor-updater apps. The work is in bundle/capgo; this file only parses options and
// prints.
#include <openssl/crypto.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "bundle/capgo.h"
#include "cli/commands.h"
#include "cli/key_loading.h"
#include "common/bytes.h"
#include "common/file.h"
#include "crypto/keys.h"

namespace airlock::cli {

namespace {

struct CapgoEncryptOptions {
  std::string zip;
  std::string private_key;
  std::string out;
  bool json = false;
};

struct CapgoKeygenOptions {
  std::string out;
  bool json = false;
};

// Capgo's key size (docs/formats/capgo.md): the Capgo CLI makes RSA-2048 keys, and older iOS
// versions of the plugin decode nothing else.
constexpr int kCapgoRsaBits = 2048;

// Outputs are never replaced: refused before any key is loaded or used (a vault key use is logged).
// The final placement is still Overwrite::kNever, for an output that appears meanwhile.
Result<void> RefuseExisting(const std::filesystem::path& out) {
  std::error_code ec;
  // symlink_status: a dangling symlink also counts as existing.
  if (std::filesystem::exists(std::filesystem::symlink_status(out, ec))) {
    return MakeError(ErrorCode::kAlreadyExists, out.string() + " already exists");
  }
  return {};
}

struct CapgoDecryptOptions {
  std::string encrypted;
  std::string public_key;
  std::string session_key;
  std::string checksum;
  std::string out;
  bool json = false;
};

// File errors already name their path; everything else gets the command's context.
Error WithPath(const Error& error, const std::string& context) {
  if (error.code() == ErrorCode::kNotFound || error.code() == ErrorCode::kIo) return error;
  return error.WithContext(context);
}

// The error to return; after a SIGINT/SIGTERM/SIGHUP (whose handlers the commands install, see
// common/file.h) the temporary output is already removed: print the line and die of the signal.
tl::unexpected<Error> Failed(const Error& error) {
  ReraiseInterruptSignal("airlock: error: " + error.message() + "\n");
  return tl::unexpected(error);
}

Result<void> RunEncrypt(const CapgoEncryptOptions& opt) {
  AIRLOCK_TRY(RefuseExisting(opt.out));
  KeyLoader keys;
  auto signer = keys.LoadCapgoSigner(opt.private_key);
  if (!signer) return tl::unexpected(signer.error().WithContext("--private-key"));
  InstallInterruptHandlers();
  auto result = bundle::capgo::EncryptFile(opt.zip, *signer, opt.out);
  if (!result) return Failed(WithPath(result.error(), "cannot encrypt " + opt.zip));
  if (opt.json) {
    PrintJson({{"checksum", result->checksum},
               {"session_key", result->session_key},
               {"output", opt.out}});
  } else {
    std::cout << "checksum: " << result->checksum << "\n"
              << "session_key: " << result->session_key << "\n";
  }
  return {};
}

Result<void> RunDecrypt(const CapgoDecryptOptions& opt) {
  AIRLOCK_TRY(RefuseExisting(opt.out));
  auto key = crypto::PublicKey::FromFile(opt.public_key);
  if (!key) return tl::unexpected(key.error().WithContext("--public-key"));
  InstallInterruptHandlers();
  auto result =
      bundle::capgo::DecryptFile(opt.encrypted, *key, opt.session_key, opt.checksum, opt.out);
  if (!result) return Failed(WithPath(result.error(), "cannot decrypt " + opt.encrypted));
  std::string sha256 = HexEncode(result->sha256);
  if (opt.json) {
    PrintJson({{"output", opt.out}, {"size", result->size}, {"sha256", sha256}});
  } else {
    std::cout << "decrypted " << opt.out << " (" << result->size << " bytes, sha256 " << sha256
              << ")\n";
  }
  return {};
}

// NAME.pem (PKCS#1 private key, 0600) and NAME.pub.pem (PKCS#1 public key): Capgo's own files
// (capgo_key_v2.pem, capgo_key_v2.pub.pem), so the public key goes into the app as it is.
Result<void> RunKeygen(const CapgoKeygenOptions& opt) {
  const std::filesystem::path key_path = opt.out + ".pem";
  const std::filesystem::path pub_path = opt.out + ".pub.pem";
  AIRLOCK_TRY(RefuseExisting(key_path));
  AIRLOCK_TRY(RefuseExisting(pub_path));
  AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey key, crypto::PrivateKey::GenerateRsa(kCapgoRsaBits));
  std::string private_pem = key.ToPkcs1Pem();
  const std::string public_pem = key.Public().ToPkcs1Pem();
  if (private_pem.empty() || public_pem.empty()) {
    return MakeError(ErrorCode::kCrypto, "cannot encode the RSA key as PKCS#1 PEM");
  }
  auto wrote_key = WriteFileAtomic(key_path, AsBytes(private_pem), 0600, Overwrite::kNever);
  OPENSSL_cleanse(private_pem.data(), private_pem.size());
  AIRLOCK_TRY(wrote_key);
  auto wrote_pub = WriteFileAtomic(pub_path, AsBytes(public_pem), 0644, Overwrite::kNever);
  if (!wrote_pub) {
    // No half pair: the private key file was made above (it did not exist).
    std::error_code ec;
    std::filesystem::remove(key_path, ec);
    return tl::unexpected(wrote_pub.error());
  }
  if (opt.json) {
    PrintJson({{"type", "rsa-2048"},
               {"private_key", key_path.string()},
               {"public_key", pub_path.string()}});
  } else {
    std::cout << "wrote " << key_path.string() << " (RSA-2048 private key, mode 0600) and "
              << pub_path.string() << " (public key for the app's capacitor config)\n";
  }
  return {};
}

}  // namespace

void AddCapgoCommands(CLI::App& app, Action& action) {
  CLI::App* capgo = app.add_subcommand(
      "capgo",
      "Capgo encryption v2 bundles for unmodified @capgo/capacitor-updater apps (weaker than "
      "Airlock's sealed bundles: see docs/formats/capgo.md)");
  capgo->require_subcommand(1);

  auto enc = std::make_shared<CapgoEncryptOptions>();
  CLI::App* encrypt = capgo->add_subcommand(
      "encrypt",
      "Encrypt a bundle zip as `capgo bundle encrypt` does: AES-128-CBC under a fresh key and IV, the "
      "key and a SHA-256 checksum each in an RSA PKCS#1 type-1 block made with the private key. Prints "
      "the checksum and session key to publish with the encrypted zip.");
  encrypt->add_option("ZIP", enc->zip, "plain bundle zip")->required();
  encrypt
      ->add_option(
          "--private-key", enc->private_key,
          "developer RSA private key: a PEM file (PKCS#1 or PKCS#8; Capgo's "
          "capgo_key_v2.pem) or a key URI (file:VAULT#name, pkcs11:token=LABEL;object=name) "
          "of a key created with --purpose capgo, used in its store and logged")
      ->required();
  encrypt->add_option("--out", enc->out, "encrypted zip to write (atomically)")->required();
  encrypt->add_flag("--json", enc->json,
                    "print {\"checksum\", \"session_key\", \"output\"} as JSON");
  encrypt->callback([enc, &action] { action = [enc] { return RunEncrypt(*enc); }; });

  auto dec = std::make_shared<CapgoDecryptOptions>();
  CLI::App* decrypt = capgo->add_subcommand(
      "decrypt",
      "Decrypt and verify a Capgo encryption v2 bundle as the app would, writing the zip only after "
      "the padding and the signed checksum both check. The legacy base64 checksum is refused.");
  decrypt->add_option("ENC_ZIP", dec->encrypted, "encrypted bundle zip")->required();
  decrypt->add_option("--public-key", dec->public_key,
                      "app RSA public key (PEM, PKCS#1 or SPKI; Capgo's capgo_key_v2.pub.pem)")
      ->required();
  decrypt->add_option("--session-key", dec->session_key,
                      "session key: base64(IV):base64(RSA block) (Capgo's ivSessionKey)")
      ->required();
  decrypt->add_option("--checksum", dec->checksum, "checksum: hex of the RSA block over the sha256")
      ->required();
  decrypt->add_option("--out", dec->out, "zip to write (atomically)")->required();
  decrypt->add_flag("--json", dec->json, "print {\"output\", \"size\", \"sha256\"} as JSON");
  decrypt->callback([dec, &action] { action = [dec] { return RunDecrypt(*dec); }; });

  auto gen = std::make_shared<CapgoKeygenOptions>();
  CLI::App* keygen = capgo->add_subcommand(
      "keygen",
      "Make a Capgo RSA-2048 key pair as `capgo key create` does: NAME.pem (PKCS#1 private key, "
      "0600; keep it, or import it into a vault with `airlock key import --purpose capgo`) and "
      "NAME.pub.pem (PKCS#1 public key, for the app). Existing files are never replaced.");
  keygen->add_option("--out", gen->out, "output name without extension, e.g. capgo_key_v2")
      ->required();
  keygen->add_flag("--json", gen->json,
                   "print {\"type\", \"private_key\", \"public_key\"} as JSON");
  keygen->callback([gen, &action] { action = [gen] { return RunKeygen(*gen); }; });
}

}  // namespace airlock::cli
