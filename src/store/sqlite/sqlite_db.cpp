#include "store/sqlite/sqlite_db.hpp"

namespace chatd::store::sqlite {
namespace {

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
    throw SqliteError(rc,
                      std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
}

}  // namespace

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
    int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) fail(db, rc, "prepare");
}

Statement::~Statement() {
    sqlite3_finalize(stmt_);
}

Statement& Statement::reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
    int rc =
        sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    if (rc != SQLITE_OK) fail(db_, rc, "bind");
    return *this;
}

Statement& Statement::bind(int index, std::int64_t value) {
    int rc = sqlite3_bind_int64(stmt_, index, value);
    if (rc != SQLITE_OK) fail(db_, rc, "bind");
    return *this;
}

Statement& Statement::bind(int index, std::nullopt_t) {
    int rc = sqlite3_bind_null(stmt_, index);
    if (rc != SQLITE_OK) fail(db_, rc, "bind");
    return *this;
}

Statement& Statement::bind(int index, const std::optional<std::string>& value) {
    return value ? bind(index, std::string_view(*value)) : bind(index, std::nullopt);
}

Statement& Statement::bind(int index, const std::optional<std::int64_t>& value) {
    return value ? bind(index, *value) : bind(index, std::nullopt);
}

bool Statement::step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, rc, "step");
}

void Statement::run() {
    while (step()) {
    }
}

std::string Statement::text(int column) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)))
             : std::string();
}

std::int64_t Statement::integer(int column) const {
    return sqlite3_column_int64(stmt_, column);
}

bool Statement::is_null(int column) const {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

Database::Database(const std::string& path, Mode mode) {
    // Before SQLite's first use in the process: no global memory statistics,
    // which every allocation would otherwise count under a process-wide mutex.
    static const int configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    (void)configured;
    int flags = SQLITE_OPEN_NOMUTEX |
                (mode == Mode::read_only ? SQLITE_OPEN_READONLY
                                         : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close(db_);
        db_ = nullptr;
        throw SqliteError(rc, "open " + path + ": " + msg);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 5000);
}

void Database::on_wal_commit(std::function<void(int)> hook) {
    wal_hook_ = std::move(hook);
    sqlite3_wal_hook(
        db_,
        [](void* self, sqlite3*, const char*, int pages) {
            static_cast<Database*>(self)->wal_hook_(pages);
            return SQLITE_OK;
        },
        this);
}

int Database::checkpoint() {
    int pages = 0;
    int copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &pages, &copied);
    // Busy: another connection is checkpointing; the next checkpoint goes on.
    if ((rc & 0xff) == SQLITE_BUSY) return 0;
    if (rc != SQLITE_OK) throw SqliteError(rc, std::string("checkpoint: ") + sqlite3_errmsg(db_));
    return copied;
}

Database::~Database() {
    cache_.clear();
    sqlite3_close(db_);
}

void Database::exec(std::string_view sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        std::string msg = err ? err : sqlite3_errstr(rc);
        sqlite3_free(err);
        throw SqliteError(rc, "exec: " + msg + " [" + std::string(sql) + "]");
    }
}

StatementUse Database::cached(std::string_view sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end())
        it = cache_.emplace(std::string(sql), std::make_unique<Statement>(db_, sql)).first;
    return StatementUse(*it->second);
}

std::int64_t Database::changes() const {
    return sqlite3_changes64(db_);
}

// BEGIN and COMMIT are prepared once, as every statement of a commit is: the
// writer runs them for every group commit, hundreds a second.
Transaction::Transaction(Database& db, Kind kind) : db_(db) {
    db_.cached(kind == Kind::write ? "BEGIN IMMEDIATE" : "BEGIN").run();
}

Transaction::~Transaction() {
    if (!done_) {
        try {
            db_.exec("ROLLBACK");
        } catch (const SqliteError&) {
            // The transaction is already gone (SQLite rolled it back itself).
        }
    }
}

void Transaction::commit() {
    db_.cached("COMMIT").run();
    done_ = true;
}

}  // namespace chatd::store::sqlite
