// The data folder's guards: one lock file held for the life of airlockd, and owner-only modes.
//
// DATA/airlockd.lock is flock(2)ed by every airlockd using DATA: exclusively when its store is the
// SQLite file (one process only), shared when it is PostgreSQL (several processes may share DATA,
// docs/operations/server.md "Scaling out"). A second airlockd that cannot take its lock refuses to
// start, although SO_REUSEPORT would let it bind the same port.
#ifndef AIRLOCK_SERVER_DATA_DIR_H_
#define AIRLOCK_SERVER_DATA_DIR_H_

#include <filesystem>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace airlock::server {

inline constexpr char kDataLockName[] = "airlockd.lock";

// Takes the lock above (exclusive or shared) without waiting; the returned descriptor holds it
// until closed. kAlreadyExists (naming DATA) when another airlockd holds it incompatibly, kIo
// otherwise.
[[nodiscard]] Result<UniqueFd> LockDataDir(const std::filesystem::path& data, bool exclusive);

// Makes DATA 0700 and its databases and secrets (*.db and their -wal/-shm/-journal files,
// vault.pass, *.audit) 0600, removing group and other bits from nothing else. Returns the paths
// whose mode it changed (an install made before this rule), for the log.
[[nodiscard]] Result<std::vector<std::string>> TightenDataDir(const std::filesystem::path& data);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_DATA_DIR_H_
