#pragma once
// A thin RAII layer over the sqlite3 C API: a connection, cached prepared
// statements, and transactions. Used only on a store thread. Failures throw
// SqliteError, which SqliteStore turns into Error::store_failure at its edge.
#include "core/hash.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace chatd::store::sqlite {

class SqliteError : public std::runtime_error {
public:
    SqliteError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int code() const { return code_; }

private:
    int code_;
};

class Statement {
public:
    Statement(sqlite3* db, std::string_view sql);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Resets and clears bindings; returns *this for chaining binds.
    Statement& reset();
    Statement& bind(int index, std::string_view text);
    Statement& bind(int index, const std::string& text) {
        return bind(index, std::string_view(text));
    }
    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, std::nullopt_t);
    Statement& bind(int index, const std::optional<std::string>& value);
    Statement& bind(int index, const std::optional<std::int64_t>& value);

    // True while a row is available.
    bool step();
    // Steps to completion, for statements that return no rows.
    void run();

    std::string text(int column) const;
    std::int64_t integer(int column) const;
    bool is_null(int column) const;

private:
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

// A cached statement in use: reset when it goes out of scope, so no statement
// keeps a read snapshot open after its caller is done with it.
class StatementUse {
public:
    explicit StatementUse(Statement& s) : s_(&s) {}
    ~StatementUse() { s_->reset(); }
    StatementUse(const StatementUse&) = delete;
    StatementUse& operator=(const StatementUse&) = delete;

    template <class T>
    StatementUse& bind(int index, T&& value) {
        s_->bind(index, std::forward<T>(value));
        return *this;
    }
    bool step() { return s_->step(); }
    void run() { s_->run(); }
    std::string text(int column) const { return s_->text(column); }
    std::int64_t integer(int column) const { return s_->integer(column); }
    bool is_null(int column) const { return s_->is_null(column); }

private:
    Statement* s_;
};

class Database {
public:
    enum class Mode { read_write, read_only };
    Database(const std::string& path, Mode mode);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    void exec(std::string_view sql);
    // Called after each commit of this connection with the write-ahead log's
    // length in pages. Replaces SQLite's automatic checkpoint, which would
    // otherwise run inside the commit that crosses wal_autocheckpoint. The
    // hook must not throw.
    void on_wal_commit(std::function<void(int pages)> hook);
    // A passive checkpoint: copies into the database file what the log
    // holds, as far as no reader still needs it, without waiting for a lock.
    // Returns how many of the log's pages the file holds now (0: busy).
    int checkpoint();
    // A statement prepared once per connection and reset after each use.
    StatementUse cached(std::string_view sql);
    std::int64_t changes() const;

private:
    sqlite3* db_ = nullptr;
    std::function<void(int)> wal_hook_;
    // Looked up by the SQL's text without building a string (the commit
    // path looks statements up once per write).
    std::unordered_map<std::string, std::unique_ptr<Statement>, TextHash, std::equal_to<>> cache_;
};

// BEGIN (IMMEDIATE for writes) on construction; ROLLBACK unless commit() ran.
class Transaction {
public:
    enum class Kind { read, write };
    Transaction(Database& db, Kind kind);
    ~Transaction();
    void commit();

private:
    Database& db_;
    bool done_ = false;
};

}  // namespace chatd::store::sqlite
