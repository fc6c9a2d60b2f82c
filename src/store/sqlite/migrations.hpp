#pragma once
// Numbered schema migrations, applied in order at start-up; each runs once, in
// its own transaction, and is recorded in schema_migrations.
#include "store/sqlite/sqlite_db.hpp"

#include <span>

namespace chatd::store::sqlite {

struct Migration {
    int version;
    const char* sql;
};

std::span<const Migration> migrations();
// Applies every migration newer than the database; returns the schema version.
int migrate(Database& db);

}  // namespace chatd::store::sqlite
