// What the developer's CLI trusts about an app on airlockd: nothing the server says because it says it.
//
// `app create` pins the root it signed (apps/APP.root.json, cli/app_config.h). Every command that
// signs on the strength of the server's data (`release publish`, `release rollback`) or hands a root
// on (`app root`) first brings that root up to date along the TUF chain (each N+1.root.json signed by
// a threshold of version N's root keys and of its own, specification 5.3.4), then verifies the
// server's current targets under the trusted root's targets keys and threshold before anything is
// signed. A server that forges a root or targets gets nothing signed and nothing uploaded.
#ifndef AIRLOCK_CLI_APP_TRUST_H_
#define AIRLOCK_CLI_APP_TRUST_H_

#include <cstdint>
#include <string>

#include "cli/http_client.h"
#include "common/result.h"
#include "metadata/metadata.h"

namespace airlock::cli {

struct TrustedRoot {
  std::string bytes;  // the newest verified root, exactly as signed
  metadata::Metadata<metadata::Root> root;
};

// Pins `root_bytes` (already trusted by the caller: it signed them or verified them with its own
// root keys) as the app's root on this machine.
[[nodiscard]] Result<void> PinTrustedRoot(const std::string& app_id, const std::string& root_bytes);

// The app's trusted root, brought up to date. Starts from `trusted_root_file` when it is not empty,
// else from the pinned root; follows /tuf/APP/N.root.json upwards from the server until it answers
// 404, each one checked by metadata::VerifyRootRotation; the newest must not be expired. The newest
// is pinned when the walk started from the pinned root or no root was pinned yet (an explicit
// --trusted-root never replaces a pin).
// Errors: kNotFound when there is no trusted root (the message says what to pass); kBadSignature,
// kRollback or kMalformed when a root the server offers does not verify (nothing is pinned);
// kExpired when the newest root has expired.
[[nodiscard]] Result<TrustedRoot> LoadTrustedRoot(HttpClient& client, const std::string& app_id,
                                                  const std::string& trusted_root_file);

// GET /tuf/APP/V.targets.json, verified under `root`'s targets keys and threshold, of exactly
// version V, and V not below the highest targets version this machine verified or signed for the
// app before (kRollback: the server's state went backwards). kBadSignature when it does not verify.
[[nodiscard]] Result<metadata::Metadata<metadata::Targets>> FetchVerifiedTargets(
    HttpClient& client, const std::string& app_id, const TrustedRoot& root, uint64_t version);

// Records that this machine signed or verified targets `version` of the app (apps/APP.state.json);
// a lower version is kept as it is.
[[nodiscard]] Result<void> RecordTargetsVersion(const std::string& app_id, uint64_t version);

}  // namespace airlock::cli

#endif  // AIRLOCK_CLI_APP_TRUST_H_
