// Internal: the Store implemented once over a Connection (SQLite or PostgreSQL).
#ifndef AIRLOCK_STORAGE_SQL_STORE_H_
#define AIRLOCK_STORAGE_SQL_STORE_H_

#include <memory>
#include <vector>

#include "storage/connection.h"
#include "storage/store.h"

namespace airlock::storage {

// Takes ownership of connections to one database that has already been migrated (at least one;
// each call to the store holds one of them for its duration).
std::unique_ptr<Store> MakeSqlStore(std::vector<std::unique_ptr<Connection>> conns);

}  // namespace airlock::storage

#endif  // AIRLOCK_STORAGE_SQL_STORE_H_
