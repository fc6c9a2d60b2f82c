#pragma once
// A bounded pool of PgConnections. acquire() lends one as a Lease: an idle
// healthy connection, else a new one while fewer than `size` exist (counting
// those being connected), else the caller waits, first come first served,
// until a lease comes back or its deadline passes.
//
// A lease that comes back broken(), or inside a transaction, is dropped and
// its slot freed; so is an idle connection the server closed. A failed connect
// frees its slot too: the pool needs no repair when the server returns, the
// next acquire() connects again.
//
// Not thread-safe: the pool, its leases and every acquire() live on one
// executor (the I/O thread). The io_context must outlive the pool and the
// leases. Leases may outlive the pool: their connections are then closed.
#include "core/error.hpp"
#include "core/net.hpp"
#include "store/postgres/pg_connection.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace chatd::store::postgres {

struct PgPoolConfig {
    std::string conninfo;  // as PgConnection::connect() takes it
    std::size_t size = 4;  // connections at most, connecting ones included
    // A new connection's deadline, unless acquire()'s own comes first.
    std::chrono::milliseconds connect_timeout{5000};
    // See PgConnection::connect (0: the server's setting).
    std::chrono::milliseconds idle_in_transaction{0};
};

struct PgPoolStats {
    std::size_t open = 0;     // connections that exist or are being connected
    std::size_t idle = 0;     // of which in the pool, not lent
    std::size_t waiting = 0;  // acquire() calls waiting for a connection
};

class PgPool {
    struct State;

public:
    using Clock = std::chrono::steady_clock;

    // A lent connection. Move-only; gives the connection back on destruction.
    class Lease {
    public:
        // Empty, holding no connection, as a moved-from lease is.
        Lease() = default;
        Lease(Lease&& other) noexcept = default;
        Lease& operator=(Lease&& other) noexcept;
        ~Lease();

        PgConnection& operator*() const { return *conn_; }
        PgConnection* operator->() const { return conn_.get(); }

    private:
        friend class PgPool;
        Lease(std::weak_ptr<State> pool, std::unique_ptr<PgConnection> conn);
        void give_back();

        std::weak_ptr<State> pool_;
        std::unique_ptr<PgConnection> conn_;
    };

    PgPool(net::any_io_executor ex, PgPoolConfig config);
    // Closes the idle connections and fails the waiting acquire() calls.
    ~PgPool();
    PgPool(const PgPool&) = delete;
    PgPool& operator=(const PgPool&) = delete;

    // A connection by `deadline`, or Error::store_unavailable: the server is
    // unreachable, or no connection came free in time.
    [[nodiscard]] net::awaitable<Result<Lease>> acquire(Clock::time_point deadline);

    PgPoolStats stats() const;

private:
    std::shared_ptr<State> state_;
};

}  // namespace chatd::store::postgres
