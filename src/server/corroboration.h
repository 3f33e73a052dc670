// The server's checks of what devices report (monitor::Corroboration, monitor/rules.h): a device
// report is a claim by whoever holds an enrolled device, so before a device rule acts, airlockd
// checks what it can itself, over DATA/tuf/<app>/, DATA/blobs/ and its vault's usage log.
//
//  * content(app, version): first the served metadata, read under a shared lock on the app's
//    .lock (so never a publish or root upload half written) and verified as a device verifies it
//    except for expiry: the root chain from 1.root.json, each file's version and size bound, the
//    timestamp, snapshot and targets signatures under the newest root, snapshot and targets against
//    the meta their parent lists. A failure of what the online keys sign (timestamp, snapshot,
//    their versions and meta) is kDamaged; of what the developer signs (roots, targets) kUnknown,
//    since replacing the server's keys cannot mend it. Then every target whose signed custom
//    `version` is `version` is compared with its blob: missing, another length or another SHA-256
//    is kDamaged; a blob that cannot be read for another reason, metadata that cannot be read, or
//    no target of that version is kUnknown; all matching is kIntact. Answers are kept per file,
//    keyed by its stat (device, inode, size, modification and change time); an answer that came
//    from an I/O error is never kept, and a blob found intact is hashed again after 10 minutes
//    even when its stat did not move. A flood of reports costs a few stat calls each (one per
//    metadata file and per target of the version).
//  * foreign_metadata(app, document): the base64 document (at most kMaxForeignDocument bytes
//    decoded) must be a snapshot or timestamp envelope with a signature that verifies under the key
//    the vault holds now for that role (AppRepo::GetOnlineKeys). It is the server's own when its
//    signed part (canonical JSON, as signatures cover it; so re-formatting or padding a served
//    file changes nothing) equals that of the served file of the same role and version, or when
//    the usage log holds a successful `sign` record of that key whose details are `sha256=` the
//    digest of that signed part (every signing since 2026-12-06; the lookup pages through all of
//    the key's sign records). Foreign only when neither holds and the server can tell: a snapshot
//    version it never wrote or wrote otherwise, a timestamp newer than the served one or of its
//    version otherwise. An older timestamp (not kept) proves nothing.
//
// Thread-safety: the returned functions may be called from any thread (content() under one
// mutex; foreign_metadata() holds no state).
#ifndef AIRLOCK_SERVER_CORROBORATION_H_
#define AIRLOCK_SERVER_CORROBORATION_H_

#include <cstddef>
#include <filesystem>

#include "monitor/rules.h"
#include "server/app_repo.h"

namespace airlock::server {

// The largest document whose base64 still fits a report's detail (4096 bytes) after "metadata=".
inline constexpr size_t kMaxForeignDocument = 3000;

struct CorroborationOptions {
  AppRepo* repo = nullptr;             // must outlive the functions
  std::filesystem::path data_dir;      // DATA
  std::filesystem::path usage_log;     // the server vault's usage log (AppRepoOptions::audit_log)
};

monitor::Corroboration ServerCorroboration(CorroborationOptions options);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_CORROBORATION_H_
