// airlock repo init|add-target|remove-target|publish|rotate|delegate|verify: static TUF
// repositories (docs/formats/tuf-repository.md). Parsing and printing only; the work is in
// src/repo.
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/key_loading.h"
#include "common/duration.h"
#include "metadata/metadata.h"
#include "repo/repository.h"

namespace airlock::cli {

namespace {

namespace fs = std::filesystem;

struct RepoInitArgs {
  std::string dir, app, key_dir;
  std::vector<std::string> root_keys, targets_keys, snapshot_keys, timestamp_keys;
  uint64_t root_threshold = 1;
  bool json = false;
};

struct AddTargetArgs {
  std::string dir, file, name, custom, role;
  bool json = false;
};

struct RemoveTargetArgs {
  std::string dir, name;
};

struct RepoPublishArgs {
  std::string dir;
  std::vector<std::string> expires_in;
  bool json = false;
};

struct RepoRotateArgs {
  std::string dir, role;
  std::vector<std::string> new_keys, old_keys;
  uint64_t threshold = 0;
  bool json = false;
};

struct DelegateArgs {
  std::string dir, role;
  std::vector<std::string> paths, keys, signing_keys;
  uint64_t threshold = 1;
  bool terminating = false;
};

struct RepoVerifyArgs {
  std::string dir;
  bool json = false;
};

// Key options: PEM files or key URIs (cli/key_loading.h), URIs made canonical (absolute vault path)
// because the repository records them.
Result<std::vector<fs::path>> KeySpecs(const std::vector<std::string>& v) {
  std::vector<fs::path> out;
  for (const std::string& spec : v) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string canonical, CanonicalKeySpec(spec));
    out.emplace_back(canonical);
  }
  return out;
}

nlohmann::json PublishJson(const repo::PublishResult& r) {
  nlohmann::json roles = nlohmann::json::object();
  for (const auto& [role, version] : r.versions) {
    roles[role] = {{"version", version}, {"expires", metadata::FormatTufTime(r.expires.at(role))}};
  }
  return roles;
}

// Warns on stderr about private keys inside DIR: a web server pointed at DIR could publish them.
void WarnAboutPrivateKeys(const std::string& dir, const std::vector<fs::path>& files) {
  if (files.empty()) return;
  std::cerr << "warning: " << files.size() << " private key file(s) inside " << dir
            << ", which a web server pointed at it could publish:\n";
  for (const fs::path& f : files) std::cerr << "  " << f.string() << "\n";
  std::cerr << "move them out of the repository (root and targets keys offline, or into a vault or "
               "HSM) and update the paths in "
            << dir << "/.airlock/repo.json\n";
}

nlohmann::json PathsJson(const std::vector<fs::path>& files) {
  nlohmann::json out = nlohmann::json::array();
  for (const fs::path& f : files) out.push_back(f.string());
  return out;
}

void PrintPublish(const repo::PublishResult& r) {
  for (const auto& [role, version] : r.versions) {
    std::cout << "  " << role << " v" << version << ", expires "
              << metadata::FormatTufTime(r.expires.at(role)) << "\n";
  }
}

Result<void> RunRepoInit(const RepoInitArgs& a) {
  repo::InitOptions options;
  options.app_id = a.app;
  options.root_threshold = a.root_threshold;
  options.key_dir = a.key_dir;
  KeyLoader keys;
  options.signer_loader = keys.AsRepoLoader();
  const std::pair<const char*, const std::vector<std::string>*> roles[] = {
      {"root", &a.root_keys},
      {"targets", &a.targets_keys},
      {"snapshot", &a.snapshot_keys},
      {"timestamp", &a.timestamp_keys}};
  for (const auto& [role, files] : roles) {
    if (!files->empty()) {
      AIRLOCK_ASSIGN_OR_RETURN(options.key_files[role], KeySpecs(*files));
    }
  }
  AIRLOCK_ASSIGN_OR_RETURN(repo::InitResult r, repo::Repository::Init(a.dir, options));
  if (a.json) {
    nlohmann::json j = {{"repository", a.dir},
                        {"app_id", a.app},
                        {"key_ids", r.key_ids},
                        {"generated_keys", PathsJson(r.generated_keys)}};
    if (!r.key_dir.empty()) j["key_dir"] = r.key_dir.string();
    PrintJson(j);
    return {};
  }
  std::cout << "initialised TUF repository for " << a.app << " in " << a.dir
            << " (root v1, consistent snapshots)\n";
  for (const auto& [role, ids] : r.key_ids) {
    for (const auto& id : ids) std::cout << "  " << role << " key " << id << "\n";
  }
  if (!r.generated_keys.empty()) {
    std::cout << "generated ed25519 keys (mode 0600) in " << r.key_dir.string()
              << " (outside the repository):\n";
    for (const auto& g : r.generated_keys) std::cout << "  " << g.string() << "\n";
    std::cout << "move the root and targets keys offline, or into a vault or HSM, and update the "
                 "paths in "
              << a.dir << "/.airlock/repo.json when you need them; serve only " << a.dir
              << "/metadata and " << a.dir << "/targets\n";
  }
  return {};
}

Result<void> RunAddTarget(const AddTargetArgs& a) {
  KeyLoader keys;
  AIRLOCK_ASSIGN_OR_RETURN(repo::Repository r, repo::Repository::Open(a.dir, keys.AsRepoLoader()));
  repo::AddTargetOptions options;
  options.name = a.name;
  options.custom_json = a.custom;
  options.role = a.role;
  AIRLOCK_ASSIGN_OR_RETURN(repo::AddTargetResult t, r.AddTarget(a.file, options));
  if (a.json) {
    nlohmann::json j = {{"name", t.name},
                        {"role", t.role},
                        {"length", t.file.length},
                        {"hashes", t.file.hashes},
                        {"replaced", t.replaced}};
    if (t.file.custom) j["custom"] = *t.file.custom;
    PrintJson(j);
    return {};
  }
  std::cout << (t.replaced ? "replaced " : "staged ") << t.name << " (" << t.file.length
            << " bytes, sha256 " << t.file.hashes["sha256"] << ") in role " << t.role << "\n";
  if (t.file.custom) std::cout << "custom: " << t.file.custom->dump() << "\n";
  std::cout << "run `airlock repo publish " << a.dir << "` to publish it\n";
  return {};
}

Result<void> RunRemoveTarget(const RemoveTargetArgs& a) {
  KeyLoader keys;
  AIRLOCK_ASSIGN_OR_RETURN(repo::Repository r, repo::Repository::Open(a.dir, keys.AsRepoLoader()));
  AIRLOCK_ASSIGN_OR_RETURN(std::string role, r.RemoveTarget(a.name));
  std::cout << "removed " << a.name << " from role " << role << "; run `airlock repo publish "
            << a.dir << "` to publish the change\n";
  return {};
}

Result<void> RunRepoPublish(const RepoPublishArgs& a) {
  repo::PublishOptions options;
  for (const std::string& spec : a.expires_in) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "--expires-in wants ROLE=DURATION, got '" + spec + "'");
    }
    AIRLOCK_ASSIGN_OR_RETURN(int64_t seconds, ParseDuration(spec.substr(eq + 1)));
    options.expires_in[spec.substr(0, eq)] = seconds;
  }
  KeyLoader keys;
  AIRLOCK_ASSIGN_OR_RETURN(repo::Repository r, repo::Repository::Open(a.dir, keys.AsRepoLoader()));
  AIRLOCK_ASSIGN_OR_RETURN(repo::PublishResult p, r.Publish(options));
  const std::vector<fs::path> private_keys = repo::FindPrivateKeyFiles(a.dir);
  WarnAboutPrivateKeys(a.dir, private_keys);
  if (a.json) {
    PrintJson({{"roles", PublishJson(p)}, {"private_key_files", PathsJson(private_keys)}});
    return {};
  }
  std::cout << "published " << a.dir << "/metadata:\n";
  PrintPublish(p);
  return {};
}

Result<void> RunRepoRotate(const RepoRotateArgs& a) {
  repo::RotateOptions options;
  options.role = a.role;
  AIRLOCK_ASSIGN_OR_RETURN(options.new_keys, KeySpecs(a.new_keys));
  AIRLOCK_ASSIGN_OR_RETURN(options.old_keys, KeySpecs(a.old_keys));
  if (a.threshold != 0) options.threshold = a.threshold;
  KeyLoader keys;
  AIRLOCK_ASSIGN_OR_RETURN(repo::Repository r, repo::Repository::Open(a.dir, keys.AsRepoLoader()));
  AIRLOCK_ASSIGN_OR_RETURN(repo::RotateResult rot, r.Rotate(options));
  if (a.json) {
    PrintJson({{"root_version", rot.root_version},
               {"removed_key_ids", rot.removed_key_ids},
               {"added_key_ids", rot.added_key_ids},
               {"roles", PublishJson(rot.published)}});
    return {};
  }
  std::cout << "rotated " << a.role << " keys: root v" << rot.root_version
            << " is signed by the old and the new root thresholds\n";
  for (const auto& id : rot.removed_key_ids) std::cout << "  removed " << id << "\n";
  for (const auto& id : rot.added_key_ids) std::cout << "  added   " << id << "\n";
  std::cout << "published:\n";
  PrintPublish(rot.published);
  return {};
}

Result<void> RunDelegate(const DelegateArgs& a) {
  repo::DelegateOptions options;
  options.role = a.role;
  options.paths = a.paths;
  AIRLOCK_ASSIGN_OR_RETURN(options.public_keys, KeySpecs(a.keys));
  AIRLOCK_ASSIGN_OR_RETURN(options.signing_keys, KeySpecs(a.signing_keys));
  options.threshold = a.threshold;
  options.terminating = a.terminating;
  KeyLoader keys;
  AIRLOCK_ASSIGN_OR_RETURN(repo::Repository r, repo::Repository::Open(a.dir, keys.AsRepoLoader()));
  AIRLOCK_ASSIGN_OR_RETURN(repo::DelegateResult d, r.Delegate(options));
  std::cout << (d.replaced ? "updated" : "added") << " delegation targets -> " << a.role
            << " (threshold " << a.threshold << (a.terminating ? ", terminating" : "") << ")\n";
  for (const auto& id : d.key_ids) std::cout << "  key " << id << "\n";
  std::cout << "add its targets with `airlock repo add-target " << a.dir << " FILE --role "
            << a.role << "`, then publish\n";
  return {};
}

Result<void> RunRepoVerify(const RepoVerifyArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(repo::VerifyReport v, repo::VerifyRepository(a.dir));
  WarnAboutPrivateKeys(a.dir, v.private_key_files);
  if (a.json) {
    nlohmann::json targets = nlohmann::json::array();
    for (const auto& t : v.targets) {
      targets.push_back({{"name", t.name}, {"role", t.role}, {"length", t.file.length}});
    }
    PrintJson({{"verified", true},
               {"root_version", v.root_version},
               {"timestamp_version", v.timestamp_version},
               {"snapshot_version", v.snapshot_version},
               {"targets_version", v.targets_version},
               {"roles", v.roles_visited},
               {"targets", targets},
               {"private_key_files", PathsJson(v.private_key_files)}});
    return {};
  }
  std::cout << "verified " << a.dir << " as a client would, from 1.root.json:\n"
            << "  root v" << v.root_version << ", timestamp v" << v.timestamp_version
            << ", snapshot v" << v.snapshot_version << ", targets v" << v.targets_version << "\n"
            << "  roles: " << v.roles_visited.size() << ", targets: " << v.targets.size()
            << " (every length and hash checked)\n";
  for (const auto& t : v.targets) {
    std::cout << "  " << t.name << " (" << t.file.length << " bytes, " << t.role << ")\n";
  }
  return {};
}

}  // namespace

void AddRepoCommands(CLI::App& app, Action& action) {
  CLI::App* repo =
      app.add_subcommand("repo", "Manage a static TUF repository (docs/formats/tuf-repository.md)");
  repo->require_subcommand(1);

  auto init = std::make_shared<RepoInitArgs>();
  CLI::App* i = repo->add_subcommand("init", "Create a repository: keys, root v1, empty targets");
  i->add_option("dir", init->dir, "Repository directory (created; must be empty if it exists)")
      ->required();
  i->add_option("--app", init->app, "App id (letters, digits, . _ -)")->required();
  i->add_option("--root-key", init->root_keys,
                "Root private key file or key URI (repeatable; default: generate)");
  i->add_option("--root-threshold", init->root_threshold, "Root signatures required")
      ->check(CLI::Range(uint64_t{1}, repo::kMaxKeysPerRole));
  i->add_option("--targets-key", init->targets_keys,
                "Targets private key file or key URI (repeatable)");
  i->add_option("--snapshot-key", init->snapshot_keys,
                "Snapshot private key file or key URI (repeatable)");
  i->add_option("--timestamp-key", init->timestamp_keys,
                "Timestamp private key file or key URI (repeatable)");
  i->add_option("--key-dir", init->key_dir,
                "Where to write generated keys, outside DIR (default: $AIRLOCK_KEY_DIR, else "
                "$XDG_CONFIG_HOME/airlock/keys/APP or ~/.config/airlock/keys/APP)");
  i->add_flag("--json", init->json, "Print the result as JSON");
  i->callback([init, &action] { action = [init] { return RunRepoInit(*init); }; });

  auto add = std::make_shared<AddTargetArgs>();
  CLI::App* a =
      repo->add_subcommand("add-target", "Stage a file (e.g. a sealed bundle) as a target");
  a->add_option("dir", add->dir, "Repository directory")->required();
  a->add_option("file", add->file, "The file; a .alb bundle's app_id and version go into custom")
      ->required();
  a->add_option("--name", add->name, "Target name (default: the file's name); may hold '/'");
  a->add_option("--custom", add->custom,
                "JSON object merged into the target's signed custom field");
  a->add_option("--role", add->role, "Delegated role to list it in (default: targets)");
  a->add_flag("--json", add->json, "Print the result as JSON");
  a->callback([add, &action] { action = [add] { return RunAddTarget(*add); }; });

  auto remove = std::make_shared<RemoveTargetArgs>();
  CLI::App* rm =
      repo->add_subcommand("remove-target", "Unstage a target (published by the next publish)");
  rm->add_option("dir", remove->dir, "Repository directory")->required();
  rm->add_option("name", remove->name, "Target name")->required();
  rm->callback([remove, &action] { action = [remove] { return RunRemoveTarget(*remove); }; });

  auto publish = std::make_shared<RepoPublishArgs>();
  CLI::App* p = repo->add_subcommand("publish",
                                     "Sign and write new targets, snapshot and timestamp versions");
  p->add_option("dir", publish->dir, "Repository directory")->required();
  p->add_option("--expires-in", publish->expires_in,
                "ROLE=DURATION (30d, 12h, 1y, 3600s), repeatable; root=... also re-signs root");
  p->add_flag("--json", publish->json, "Print the result as JSON");
  p->callback([publish, &action] { action = [publish] { return RunRepoPublish(*publish); }; });

  auto rotate = std::make_shared<RepoRotateArgs>();
  CLI::App* r =
      repo->add_subcommand("rotate", "Replace a role's keys in a new root version, and publish");
  r->add_option("dir", rotate->dir, "Repository directory")->required();
  r->add_option("--role", rotate->role, "root, targets, snapshot or timestamp")
      ->required()
      ->check(CLI::IsMember({"root", "targets", "snapshot", "timestamp"}));
  r->add_option("--new-key", rotate->new_keys, "New private key file or key URI (repeatable)")
      ->required();
  r->add_option("--old-key", rotate->old_keys,
                "Old root private key to sign with (default: configured)");
  r->add_option("--threshold", rotate->threshold, "New threshold for the role (default: unchanged)")
      ->check(CLI::Range(uint64_t{1}, repo::kMaxKeysPerRole));
  r->add_flag("--json", rotate->json, "Print the result as JSON");
  r->callback([rotate, &action] { action = [rotate] { return RunRepoRotate(*rotate); }; });

  auto delegate = std::make_shared<DelegateArgs>();
  CLI::App* d =
      repo->add_subcommand("delegate", "Delegate target paths to a role with its own keys");
  d->add_option("dir", delegate->dir, "Repository directory")->required();
  d->add_option("--role", delegate->role, "Delegated role name")->required();
  d->add_option("--paths", delegate->paths, "Path pattern ('*' does not cross '/'), repeatable")
      ->required();
  d->add_option("--key", delegate->keys, "The role's public key K.pub, or a key URI (repeatable)")
      ->required();
  d->add_option("--signing-key", delegate->signing_keys,
                "The role's private key, if not K.key beside K.pub (repeatable)");
  d->add_option("--threshold", delegate->threshold, "Signatures required")
      ->check(CLI::Range(uint64_t{1}, repo::kMaxKeysPerRole));
  d->add_flag("--terminating", delegate->terminating, "Stop the search at this role for its paths");
  d->callback([delegate, &action] { action = [delegate] { return RunDelegate(*delegate); }; });

  auto verify = std::make_shared<RepoVerifyArgs>();
  CLI::App* v = repo->add_subcommand("verify", "Check the published repository as a client would");
  v->add_option("dir", verify->dir, "Repository directory")->required();
  v->add_flag("--json", verify->json, "Print the result as JSON");
  v->callback([verify, &action] { action = [verify] { return RunRepoVerify(*verify); }; });
}

}  // namespace airlock::cli
