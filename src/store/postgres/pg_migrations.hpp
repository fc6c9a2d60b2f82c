#pragma once
// PostgreSQL's numbered schema migrations: the same numbers and meaning as
// SQLite's (store/sqlite/migrations.cpp), in PostgreSQL's dialect. Each is a
// list of single statements (the extended protocol runs one at a time), applied
// in one transaction and recorded in schema_migrations.
#include <span>
#include <string_view>

namespace chatd::store::postgres {

struct PgMigration {
    int version;
    std::span<const std::string_view> statements;
};

std::span<const PgMigration> pg_migrations();

}  // namespace chatd::store::postgres
