// The server's checks of what devices report (monitor::Corroboration, monitor/rules.h): a device
// report is a claim by whoever holds an enrolled device, so before a device rule acts, airlockd
// checks what it can itself, over DATA/tuf/<app>/, DATA/blobs/ and its vault's usage log.
//
//  * content(app, version): the served metadata must verify as a device verifies it (timestamp,
//    snapshot and targets each signed by the keys the newest root assigns to their role, snapshot
//    and targets matching the length and hashes their parent lists); otherwise kDamaged. Then
//    every target of the served targets whose signed custom `version` is `version` is compared with
//    its blob: a missing blob, another length or another SHA-256 is kDamaged; a blob that cannot be
//    read for another reason, metadata that cannot be read, or no target of that version is
//    kUnknown; all matching is kIntact. Answers are kept per metadata file and per blob, keyed by
//    the file's stat (device, inode, size, modification and change time): a flood of reports costs
//    a few stat calls each, and any change to a file is seen by the next report.
//  * foreign_metadata(app, document): the base64 document (at most kMaxForeignDocument bytes
//    decoded) must be a snapshot or timestamp envelope with a signature that verifies under the key
//    the vault holds now for that role (AppRepo::GetOnlineKeys). It is the server's own when its
//    signed part (canonical JSON, as signatures cover it; so re-formatting or padding a served
//    file changes nothing) equals that of the served file of the same role and version, or when the
//    usage log holds a `sign` record of that key with `sha256=` the digest of that signed part
//    (every signing since 2026-12-06 is recorded so). Foreign only when neither holds and the
//    server can tell: a snapshot version it never wrote or wrote otherwise, a timestamp newer than
//    the served one or of its version otherwise. An older timestamp (not kept) proves nothing.
//
// Thread-safety: the returned functions may be called from any thread (one mutex).
#ifndef AIRLOCK_SERVER_CORROBORATION_H_
#define AIRLOCK_SERVER_CORROBORATION_H_

#include <cstddef>
#include <filesystem>

#include "monitor/rules.h"
#include "server/app_repo.h"

namespace airlock::server {

inline constexpr size_t kMaxForeignDocument = 3 * 1024;

struct CorroborationOptions {
  AppRepo* repo = nullptr;             // must outlive the functions
  std::filesystem::path data_dir;      // DATA
  std::filesystem::path usage_log;     // the server vault's usage log (AppRepoOptions::audit_log)
};

monitor::Corroboration ServerCorroboration(CorroborationOptions options);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_CORROBORATION_H_
