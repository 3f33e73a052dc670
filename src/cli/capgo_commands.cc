// `airlock capgo encrypt|decrypt`: Capgo encryption v2 bundles for unmodified @capgo/capacitor-updater
// apps. The work is in bundle/capgo; this file only parses options and prints.
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
}

}  // namespace airlock::cli
