// Internal: the Store implemented once over a Connection (SQLite or PostgreSQL).
#ifndef AIRLOCK_STORAGE_SQL_STORE_H_
#define AIRLOCK_STORAGE_SQL_STORE_H_

#include <memory>

#include "storage/connection.h"
#include "storage/store.h"

namespace airlock::storage {

// Takes ownership of a connection that has already been migrated.
std::unique_ptr<Store> MakeSqlStore(std::unique_ptr<Connection> conn);

}  // namespace airlock::storage

#endif  // AIRLOCK_STORAGE_SQL_STORE_H_
