// airlock keygen: make a key pair as two PEM files.
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "crypto/keys.h"

namespace airlock::cli {

namespace {
struct KeygenArgs {
  std::string type;
  std::string out;
  bool json = false;
};

Result<void> RunKeygen(const KeygenArgs& args) {
  AIRLOCK_ASSIGN_OR_RETURN(crypto::KeyType type, crypto::ParseKeyType(args.type));
  AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey key, crypto::PrivateKey::Generate(type));
  AIRLOCK_TRY(crypto::WriteKeyPair(key, args.out));
  std::string key_id = key.KeyId();
  if (args.json) {
    PrintJson({{"type", std::string(crypto::KeyTypeName(type))},
               {"key_id", key_id},
               {"private_key", args.out + ".key"},
               {"public_key", args.out + ".pub"}});
  } else {
    std::cout << "wrote " << args.out << ".key (private, mode 0600) and " << args.out << ".pub\n"
              << "type: " << crypto::KeyTypeName(type) << "\nkey id: " << key_id << "\n";
  }
  return {};
}
}  // namespace

void AddKeygenCommand(CLI::App& app, Action& action) {
  auto args = std::make_shared<KeygenArgs>();
  CLI::App* cmd = app.add_subcommand("keygen", "Generate a key pair: NAME.key (PKCS#8, 0600) and NAME.pub (SPKI)");
  cmd->add_option("--type", args->type, "Key type")
      ->required()
      ->check(CLI::IsMember({"ed25519", "ecdsa-p256", "rsa-4096", "x25519"}));
  cmd->add_option("--out", args->out, "Output name (without extension)")->required();
  cmd->add_flag("--json", args->json, "Print the result as JSON");
  cmd->callback([args, &action] { action = [args] { return RunKeygen(*args); }; });
}

}  // namespace airlock::cli
