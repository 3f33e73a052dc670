// airlock access add|list|disable|enable|totp-enroll|totp-remove|totp-check|token-create|check:
// principals, roles, API tokens and TOTP of a file vault (access/access_store.h;
// docs/operations/audit.md).
#include <algorithm>
#include <iostream>
#include <memory>

#include "access/access_store.h"
#include "audit/audit_log.h"
#include "cli/app_config.h"
#include "cli/audit_options.h"
#include "cli/commands.h"
#include "cli/key_loading.h"
#include "cli/table.h"
#include "keys/file_vault.h"

namespace airlock::cli {

namespace {

constexpr int64_t kSecondsPerDay = 86400;

// ---- access ---------------------------------------------------------------------------------

struct AccessArgs {
  LogArgs log;
  std::string access, actor, name, totp, reason, passphrase_file;
  std::vector<std::string> roles;
  std::vector<std::string> custodians;  // NAME:CODE
  int64_t ttl_days = 0;
  bool json = false;
};

void AddAccessOptions(CLI::App* c, AccessArgs& a) {
  AddLogOptions(c, a.log);
  c->add_option("--access", a.access, "The access store file (default: VAULT_PATH.access)")
      ->envname("AIRLOCK_ACCESS_STORE");
  c->add_option("--actor", a.actor, "Who is acting (default: $AIRLOCK_ACTOR, else the OS user)");
  c->add_option("--reason", a.reason, "Why (recorded in the usage log)");
  c->add_option("--passphrase-file", a.passphrase_file,
                "File holding the vault passphrase (first line); TOTP secrets are sealed under it");
  c->add_flag("--json", a.json, "Print the result as JSON");
}

// The vault (its key seals TOTP secrets and its sealed state says whether it has access control),
// its audit log and its access file: opened through OpenKeySession, so a vault with access control
// whose access file is missing or empty refuses here exactly as for key operations.
struct AccessSession {
  std::unique_ptr<KeySession> session;
  access::AccessStore* store = nullptr;
  std::string actor;
  std::string reason;

  Result<void> Record(std::string_view operation, std::string_view subject, const Error* error,
                      std::string details = {}) {
    audit::UsageRecord r;
    r.actor = actor;
    r.operation = std::string(operation);
    r.key_name = "";
    r.source = "local";
    r.reason = reason;
    r.details = "principal=" + std::string(subject) + (details.empty() ? "" : " " + details);
    if (error != nullptr) {
      r.result = error->code() == access::kDeniedCode ||
                         error->code() == ErrorCode::kBadSignature ||
                         error->code() == ErrorCode::kRollback
                     ? audit::UsageResult::kDenied
                     : audit::UsageResult::kFailed;
      r.result_reason = error->ToString();
    }
    return session->sink->Append(r);
  }
};

Result<AccessSession> OpenAccess(const AccessArgs& a) {
  std::string vault = a.log.vault;
  if (vault.empty()) {
    bool is_default = false;
    AIRLOCK_ASSIGN_OR_RETURN(vault, DefaultVaultUri(&is_default));
  }
  if (!vault.starts_with("file:")) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "access control belongs to a file vault: give --vault file:PATH");
  }
  KeyStoreArgs k;
  k.vault = vault;
  k.audit = a.log.audit;
  k.access = a.access;
  k.actor = a.actor.empty() ? DefaultActor() : a.actor;
  k.reason = a.reason;
  k.passphrase_file = a.passphrase_file;
  k.passphrase_flag = "--passphrase-file";
  k.managing_access = true;
  AccessSession s;
  AIRLOCK_ASSIGN_OR_RETURN(s.session, OpenKeySession(k));
  if (!s.session->access) {
    // No access file and the vault has no access control (else the open was refused): make it.
    AIRLOCK_ASSIGN_OR_RETURN(
        access::AccessStore made,
        access::AccessStore::Open(s.session->access_path, AccessOptionsFor(s.session->vault)));
    s.session->access = std::make_unique<access::AccessStore>(std::move(made));
  }
  s.store = s.session->access.get();
  s.actor = k.actor;
  s.reason = a.reason;
  return s;
}

// The gate for managing principals, recorded when refused.
Result<void> GateManage(AccessSession& s, access::Action action, std::string_view operation,
                        std::string_view subject, bool bootstrap_ok) {
  AIRLOCK_ASSIGN_OR_RETURN(bool empty, s.store->Empty());
  if (empty && bootstrap_ok) return {};
  auto allowed = s.store->AuthorizeActor(s.actor, action, std::nullopt);
  if (!allowed) {
    AIRLOCK_TRY(s.Record(operation, subject, &allowed.error()));
    return tl::unexpected(allowed.error());
  }
  return {};
}

Result<std::vector<access::Role>> ParseRoles(const std::vector<std::string>& names) {
  std::vector<access::Role> roles;
  for (const std::string& n : names) {
    AIRLOCK_ASSIGN_OR_RETURN(access::Role r, access::ParseRole(n));
    roles.push_back(r);
  }
  if (roles.empty())
    return MakeError(ErrorCode::kInvalidArgument, "at least one --role is required");
  return roles;
}

std::string RolesList(const std::vector<access::Role>& roles) {
  std::string out;
  for (access::Role r : roles) out += (out.empty() ? "" : ",") + std::string(access::RoleName(r));
  return out;
}

nlohmann::json PrincipalJson(const access::Principal& p) {
  std::vector<std::string> roles;
  for (access::Role r : p.roles) roles.emplace_back(access::RoleName(r));
  nlohmann::json j = {{"name", p.name},
                      {"kind", std::string(access::PrincipalKindName(p.kind))},
                      {"roles", roles},
                      {"disabled", p.disabled},
                      {"created", FormatUtc(p.created)},
                      {"totp", p.has_totp}};
  if (p.expires) j["expires"] = FormatUtc(*p.expires);
  return j;
}

Result<void> RunAddPerson(const AccessArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<access::Role> roles, ParseRoles(a.roles));
  AIRLOCK_ASSIGN_OR_RETURN(AccessSession s, OpenAccess(a));
  AIRLOCK_ASSIGN_OR_RETURN(bool empty, s.store->Empty());
  if (empty && std::find(roles.begin(), roles.end(), access::Role::kOwner) == roles.end()) {
    return MakeError(ErrorCode::kInvalidArgument, "the first principal must have the owner role");
  }
  AIRLOCK_TRY(GateManage(s, access::Action::kPrincipalManage, "principal-add", a.name, true));
  const bool powerful = std::any_of(roles.begin(), roles.end(), [](access::Role r) {
    return r == access::Role::kOwner || r == access::Role::kKeyCustodian;
  });
  if (!empty && powerful) {
    // Otherwise anyone who may manage principals could make a custodian (and enrol its TOTP) and so
    // bypass every second factor.
    auto vouched = [&]() -> Result<void> {
      if (a.totp.empty()) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "granting owner or key-custodian needs your own TOTP code (--totp)");
      }
      return s.store->CheckTotp(s.actor, a.totp);
    }();
    if (!vouched) {
      AIRLOCK_TRY(s.Record("principal-add", a.name, &vouched.error(), "roles=" + RolesList(roles)));
      return vouched;
    }
  }
  auto p = s.store->AddPerson(a.name, roles);
  AIRLOCK_TRY(
      s.Record("principal-add", a.name, p ? nullptr : &p.error(), "roles=" + RolesList(roles)));
  if (!p) return tl::unexpected(p.error());
  if (empty) {
    // The vault records, sealed under its key, that it has access control from now on: deleting the
    // access file no longer switches it off.
    AIRLOCK_TRY(s.session->vault->UpdateState([](keys::VaultState& st) -> Result<void> {
      st.access_control = true;
      return {};
    }));
    std::cerr << "vault " << s.session->uri.path << " has access control from now on\n";
  }
  if (a.json) {
    PrintJson(PrincipalJson(*p));
  } else {
    std::cout << "added " << p->name << " (" << RolesList(p->roles) << ")\n";
  }
  return {};
}

Result<void> RunList(const AccessArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(std::filesystem::path access_path, AccessPath(a.log, a.access));
  AIRLOCK_ASSIGN_OR_RETURN(access::AccessStore store,
                           access::AccessStore::OpenExisting(access_path));
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<access::Principal> list, store.List());
  if (a.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& p : list) j.push_back(PrincipalJson(p));
    PrintJson(j);
    return {};
  }
  std::vector<TableRow> rows;
  for (const auto& p : list) {
    rows.push_back({p.name, std::string(access::PrincipalKindName(p.kind)), RolesList(p.roles),
                    p.has_totp ? "yes" : "no", p.disabled ? "yes" : "no",
                    p.expires ? FormatUtc(*p.expires) : "-"});
  }
  PrintTable(std::cout, {"NAME", "KIND", "ROLES", "TOTP", "DISABLED", "EXPIRES"}, rows);
  return {};
}

Result<void> RunSetDisabled(const AccessArgs& a, bool disabled) {
  AIRLOCK_ASSIGN_OR_RETURN(AccessSession s, OpenAccess(a));
  const char* op = disabled ? "principal-disable" : "principal-enable";
  AIRLOCK_TRY(GateManage(s, access::Action::kPrincipalManage, op, a.name, false));
  auto r = s.store->SetDisabled(a.name, disabled);
  AIRLOCK_TRY(s.Record(op, a.name, r ? nullptr : &r.error()));
  if (!r) return r;
  std::cout << (disabled ? "disabled " : "enabled ") << a.name << "\n";
  return {};
}

Result<access::TotpAuthority> AuthorityFrom(const AccessArgs& a) {
  access::TotpAuthority authority;
  if (!a.totp.empty()) authority.own_code = a.totp;
  for (const std::string& item : a.custodians) {
    size_t colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == item.size()) {
      return MakeError(ErrorCode::kInvalidArgument, "--custodian is NAME:CODE");
    }
    authority.custodians.emplace_back(item.substr(0, colon), item.substr(colon + 1));
  }
  return authority;
}

// Replacing or removing a TOTP secret: the person's own current code, or two custodians' codes
// (AccessStore::EnrollTotp). Someone else running it also needs principal.manage, unless they are
// one of the two custodians.
Result<void> GateTotpChange(AccessSession& s, const AccessArgs& a, std::string_view operation) {
  bool self = s.actor == a.name;
  bool vouching = std::any_of(a.custodians.begin(), a.custodians.end(), [&](const std::string& c) {
    return c.substr(0, c.rfind(':')) == s.actor;
  });
  if (self || vouching) return {};
  return GateManage(s, access::Action::kPrincipalManage, operation, a.name, false);
}

Result<void> RunEnroll(const AccessArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(access::TotpAuthority authority, AuthorityFrom(a));
  AIRLOCK_ASSIGN_OR_RETURN(AccessSession s, OpenAccess(a));
  AIRLOCK_TRY(GateTotpChange(s, a, "totp-enroll"));
  auto e = s.store->EnrollTotp(a.name, authority);
  AIRLOCK_TRY(s.Record("totp-enroll", a.name, e ? nullptr : &e.error()));
  if (!e) return tl::unexpected(e.error());
  if (a.json) {
    PrintJson({{"name", a.name}, {"secret_base32", e->base32}, {"otpauth_uri", e->uri}});
  } else {
    std::cout << "TOTP enrolled for " << a.name
              << "; add it to an authenticator app now (shown once):\n"
              << "  secret: " << e->base32 << "\n  uri:    " << e->uri << "\n";
  }
  return {};
}

Result<void> RunRemoveTotp(const AccessArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(access::TotpAuthority authority, AuthorityFrom(a));
  AIRLOCK_ASSIGN_OR_RETURN(AccessSession s, OpenAccess(a));
  AIRLOCK_TRY(GateTotpChange(s, a, "totp-remove"));
  auto r = s.store->RemoveTotp(a.name, authority);
  AIRLOCK_TRY(s.Record("totp-remove", a.name, r ? nullptr : &r.error()));
  if (!r) return r;
  std::cout << "TOTP removed for " << a.name << "\n";
  return {};
}

Result<void> RunCheckTotp(const AccessArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(AccessSession s, OpenAccess(a));
  auto r = s.store->CheckTotp(a.name, a.totp);
  AIRLOCK_TRY(s.Record("totp-check", a.name, r ? nullptr : &r.error()));
  if (!r) return r;
  std::cout << "TOTP code accepted for " << a.name << "\n";
  return {};
}

Result<void> RunTokenCreate(const AccessArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<access::Role> roles, ParseRoles(a.roles));
  if (a.ttl_days < 0 || a.ttl_days > 3650) {
    return MakeError(ErrorCode::kInvalidArgument, "--ttl-days must be 0..3650");
  }
  AIRLOCK_ASSIGN_OR_RETURN(AccessSession s, OpenAccess(a));
  AIRLOCK_TRY(GateManage(s, access::Action::kTokenManage, "token-create", a.name, false));
  auto t = s.store->CreateToken(a.name, roles, a.ttl_days * kSecondsPerDay);
  AIRLOCK_TRY(
      s.Record("token-create", a.name, t ? nullptr : &t.error(), t ? "sha256=" + t->hash : ""));
  if (!t) return tl::unexpected(t.error());
  if (a.json) {
    nlohmann::json j = PrincipalJson(t->principal);
    j["token"] = t->token;
    j["sha256"] = t->hash;
    PrintJson(j);
  } else {
    std::cout << "token " << a.name << " (" << RolesList(roles)
              << "); store it now, it is not shown again:\n"
              << t->token << "\n";
  }
  return {};
}

Result<void> RunAuthorize(const AccessArgs& a, const std::string& action_name) {
  AIRLOCK_ASSIGN_OR_RETURN(access::Action action, access::ParseAction(action_name));
  AIRLOCK_ASSIGN_OR_RETURN(AccessSession s, OpenAccess(a));
  std::optional<std::string_view> code;
  if (!a.totp.empty()) code = a.totp;
  std::string who = a.name.empty() ? s.actor : a.name;
  auto p = s.store->AuthorizeActor(who, action, code);
  if (access::RequiresSecondFactor(action) && code) {
    // A TOTP code was spent (or refused): that is a usage worth recording.
    AIRLOCK_TRY(s.Record("authorize", who, p ? nullptr : &p.error(), "action=" + action_name));
  }
  if (!p) return tl::unexpected(p.error());
  std::cout << who << " may " << action_name << "\n";
  return {};
}

}  // namespace

void AddAccessCommands(CLI::App& app, Action& action) {
  CLI::App* access = app.add_subcommand("access", "Principals, roles, API tokens and TOTP");
  access->require_subcommand(1);

  auto add_args = std::make_shared<AccessArgs>();
  CLI::App* add = access->add_subcommand("add", "Add a person (the first one must be an owner)");
  add->add_option("name", add_args->name, "Principal name")->required();
  add->add_option("--role", add_args->roles, "Role (repeatable)")->required();
  add->add_option("--totp", add_args->totp,
                  "Your own TOTP code (granting owner or key-custodian needs it)");
  AddAccessOptions(add, *add_args);
  add->callback([add_args, &action] { action = [add_args] { return RunAddPerson(*add_args); }; });

  auto list_args = std::make_shared<AccessArgs>();
  CLI::App* list = access->add_subcommand("list", "List principals");
  AddAccessOptions(list, *list_args);
  list->callback([list_args, &action] { action = [list_args] { return RunList(*list_args); }; });

  for (bool disabled : {true, false}) {
    auto args = std::make_shared<AccessArgs>();
    CLI::App* c =
        access->add_subcommand(disabled ? "disable" : "enable",
                               disabled ? "Disable a person or revoke a token" : "Re-enable");
    c->add_option("name", args->name, "Principal name")->required();
    AddAccessOptions(c, *args);
    c->callback([args, disabled, &action] {
      action = [args, disabled] { return RunSetDisabled(*args, disabled); };
    });
  }

  auto enroll_args = std::make_shared<AccessArgs>();
  CLI::App* enroll =
      access->add_subcommand("totp-enroll", "Enrol (or replace) a person's TOTP secret");
  enroll->add_option("name", enroll_args->name, "Principal name")->required();
  AddAccessOptions(enroll, *enroll_args);
  enroll->callback(
      [enroll_args, &action] { action = [enroll_args] { return RunEnroll(*enroll_args); }; });

  enroll->add_option("--totp", enroll_args->totp, "Replacing: the person's current code");
  enroll->add_option("--custodian", enroll_args->custodians,
                     "Replacing a lost one: NAME:CODE of a key custodian (give two)");

  auto remove_args = std::make_shared<AccessArgs>();
  CLI::App* remove = access->add_subcommand("totp-remove", "Remove a person's TOTP secret");
  remove->add_option("name", remove_args->name, "Principal name")->required();
  remove->add_option("--totp", remove_args->totp, "The person's current code");
  remove->add_option("--custodian", remove_args->custodians,
                     "NAME:CODE of a key custodian (give two)");
  AddAccessOptions(remove, *remove_args);
  remove->callback(
      [remove_args, &action] { action = [remove_args] { return RunRemoveTotp(*remove_args); }; });

  auto check_args = std::make_shared<AccessArgs>();
  CLI::App* check = access->add_subcommand("totp-check", "Check a TOTP code (spends it)");
  check->add_option("name", check_args->name, "Principal name")->required();
  check->add_option("--totp", check_args->totp, "The code")->required();
  AddAccessOptions(check, *check_args);
  check->callback(
      [check_args, &action] { action = [check_args] { return RunCheckTotp(*check_args); }; });

  auto token_args = std::make_shared<AccessArgs>();
  CLI::App* token = access->add_subcommand("token-create", "Create an API token (shown once)");
  token->add_option("name", token_args->name, "Token name")->required();
  token->add_option("--role", token_args->roles, "Role (repeatable)")->required();
  token->add_option("--ttl-days", token_args->ttl_days, "Lifetime in days (0: no expiry)");
  AddAccessOptions(token, *token_args);
  token->callback(
      [token_args, &action] { action = [token_args] { return RunTokenCreate(*token_args); }; });

  auto authz_args = std::make_shared<AccessArgs>();
  auto authz_action = std::make_shared<std::string>();
  CLI::App* authz =
      access->add_subcommand("check", "May the actor (or NAME) do ACTION? Exit 0 if so");
  authz->add_option("action", *authz_action, "key.sign, key.rotate, ...")->required();
  authz->add_option("--name", authz_args->name, "Principal to check (default: the actor)");
  authz->add_option("--totp", authz_args->totp, "TOTP code for custodian actions");
  AddAccessOptions(authz, *authz_args);
  authz->callback([authz_args, authz_action, &action] {
    action = [authz_args, authz_action] { return RunAuthorize(*authz_args, *authz_action); };
  });
}

}  // namespace airlock::cli
