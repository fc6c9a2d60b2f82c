// The composition root: the only place concrete types meet. One I/O thread runs
// the HTTP server, the engine and the persister; SQLite runs on its own threads.
#include "config/config.hpp"
#include "core/directory_lock.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <iostream>

namespace {

namespace net = boost::asio;
using namespace chatd;

// Resolves the listen address once. `none` serves every request as one user
// without credentials: only the local machine may reach it.
void check_listen_address(config::Config& c) {
    auto address = http::resolve_listen_address(c.server.host);
    c.server.address = address;
    if (c.auth.mode == auth::AuthMode::none && !auth::is_loopback(address))
        throw std::runtime_error(
            "--auth none serves one local user without credentials, so it listens only on a "
            "loopback address (127.0.0.1, ::1, localhost), not on " +
            c.server.host + "; choose --auth jwt, api-keys or trusted-header");
}

std::unique_ptr<llm::Provider> make_provider(const config::Config& c) {
    switch (c.provider) {
        case config::ProviderKind::openai:
            return std::make_unique<llm::upstream::UpstreamProvider>(
                llm::upstream::make_openai_wire(c.wire), c.upstream);
        case config::ProviderKind::anthropic:
            return std::make_unique<llm::upstream::UpstreamProvider>(
                llm::upstream::make_anthropic_wire(c.wire), c.upstream);
        case config::ProviderKind::simulated:
            break;
    }
    return std::make_unique<llm::simulated::SimulatedProvider>(c.simulated);
}

http::StaticFiles load_web(const config::Config& c) {
    std::vector<http::StaticMount> mounts;
    if (c.web_dir.empty()) return {};
    std::error_code ec;
    if (!std::filesystem::is_directory(c.web_dir, ec)) {
        log::warn("{} is not a readable directory{}: no web UI (--web-dir)", c.web_dir.string(),
                  ec ? " (" + ec.message() + ")" : std::string());
        return {};
    }
    mounts.push_back({"/", c.web_dir});
    if (std::filesystem::is_regular_file(c.markdown_js, ec)) {
        mounts.push_back({"/vendor/markdown-it.js", c.markdown_js});
    } else {
        log::warn("{} not found (Debian package libjs-markdown-it): the UI shows plain text",
                  c.markdown_js.string());
    }
    try {
        http::StaticFiles files(mounts);
        log::info("serving the web UI from {} ({} files)", c.web_dir.string(), files.size());
        return files;
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string(e.what()) + " (--web-dir " + c.web_dir.string() +
                                 "; `none` serves no UI)");
    }
}

// The key that signs browser session cookies: from the environment (the same
// on every node), or made once and kept in the data directory.
std::unique_ptr<auth::SessionCookies> make_sessions(const config::Config& c,
                                                    const auth::Authenticator& a) {
    if (!a.issues_sessions()) return nullptr;
    if (!c.session_secret.empty()) return std::make_unique<auth::SessionCookies>(c.session_secret);
    auto file = c.data_dir / "session.key";
    std::string key;
    if (std::filesystem::exists(file)) {
        key = auth::read_small_file(file, 4096);
    } else {
        key.resize(32);
        fill_random(key.data(), key.size());
        auto tmp = c.data_dir / "session.key.tmp";
        {
            std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
            out.write(key.data(), static_cast<std::streamsize>(key.size()));
            if (!out.flush()) throw std::runtime_error("cannot write " + tmp.string());
        }
        std::filesystem::permissions(
            tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        std::filesystem::rename(tmp, file);
        log::info("made a session cookie key in {}", file.string());
    }
    if (key.size() < 32) throw std::runtime_error(file.string() + " holds fewer than 32 bytes");
    return std::make_unique<auth::SessionCookies>(std::move(key));
}

// Binds and listens; the error names the address and what to do.
std::uint16_t listen(http::Server& server, const http::ServerConfig& c) {
    try {
        return server.listen();
    } catch (const boost::system::system_error& e) {
        std::string hint;
        if (e.code() == net::error::address_in_use)
            hint = "; another process listens there: stop it, or choose another --port";
        else if (e.code() == net::error::access_denied)
            hint = "; ports below 1024 need root or CAP_NET_BIND_SERVICE";
        else if (e.code() == boost::system::errc::address_not_available)
            hint = "; the address is not one of this machine's";
        throw std::runtime_error("cannot listen on " + c.host + " port " + std::to_string(c.port) +
                                 " (--host, --port): " + e.code().message() + hint);
    }
}

// PostgreSQL: connects and migrates on the event loop (libpq non-blocking),
// which runs just for that before the server starts.
std::unique_ptr<store::ChatStore> open_postgres(const config::Config& c, net::io_context& io) {
    auto opened = net::co_spawn(io, store::postgres::PgStore::open(io.get_executor(), *c.postgres),
                                net::use_future);
    io.run();
    io.restart();
    try {
        return opened.get();
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string("cannot open the PostgreSQL store (--db): ") +
                                 e.what());
    }
}

std::unique_ptr<store::ChatStore> open_store(const config::Config& c, net::io_context& io) {
    if (c.postgres) return open_postgres(c, io);
    // Checked first: SQLite would otherwise make its -wal and -shm files
    // beside a database it then cannot write, and they outlive the fix.
    const auto& path = c.sqlite.path;
    if (std::filesystem::exists(path) && ::access(path.c_str(), R_OK | W_OK) != 0)
        throw std::runtime_error("cannot open the database " + path.string() + " (--data-dir " +
                                 c.data_dir.string() + "): " + std::strerror(errno) +
                                 " (it must be readable and writable by uid " +
                                 std::to_string(::getuid()) + ")");
    try {
        return std::make_unique<store::sqlite::SqliteStore>(c.sqlite);
    } catch (const std::exception& e) {
        throw std::runtime_error("cannot open the database " + c.sqlite.path.string() +
                                 " (--data-dir " + c.data_dir.string() + "): " + e.what());
    }
}

// The parts that count (API, engine, persister, upstream) count into `m`.
config::Config counting_into(config::Config c, Metrics& m) {
    c.api.metrics = &m;
    c.engine.metrics = &m;
    c.engine.persister.metrics = &m;
    c.upstream.metrics = &m;
    return c;
}

struct App {
    // In the order that checks what can fail before anything is written:
    // credentials and key files, the listening socket, the data directory's
    // lock; only then the session key and the database are made.
    Metrics metrics;
    config::Config config;
    net::io_context io{1};
    std::unique_ptr<auth::Authenticator> authenticator = auth::make_authenticator(config.auth);
    std::unique_ptr<llm::Provider> provider = make_provider(config);
    http::StaticFiles web = load_web(config);
    http::Server server{io.get_executor(), config.server, api};  // api is only stored here
    std::uint16_t port = listen(server, config.server);
    DirectoryLock data_lock{config.data_dir};
    std::unique_ptr<auth::SessionCookies> sessions = make_sessions(config, *authenticator);
    std::unique_ptr<store::ChatStore> store_owner = open_store(config, io);
    store::ChatStore& store = *store_owner;
    engine::Engine engine{io.get_executor(), store, *provider, engine_config()};
    engine::Feeds feeds{io.get_executor(), engine, store};
    engine::Conversations conversations{engine, store, config.conversations};
    api::ChatApi api{engine, feeds, store, conversations, *authenticator, sessions.get(),
                     config.api, web};
    net::signal_set signals{io, SIGINT, SIGTERM};
    bool stopping = false;
    net::steady_timer hard_stop{io};
    net::signal_set reload_signal{io, SIGHUP};
    net::thread_pool reload_thread{1};  // destroyed (joined) before the authenticator

    explicit App(config::Config c) : config(counting_into(std::move(c), metrics)) {}

    // The node is named after the host and the port it listens on, unless
    // --node-id names it: unique among the nodes of one database either way.
    engine::EngineConfig engine_config() const {
        auto c = config.engine;
        if (c.lease.node.empty()) {
            char host[256] = {};
            if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
            c.lease.node = std::string(host) + ":" + std::to_string(port);
        }
        return c;
    }

    // SIGHUP: re-read key files off the event loop (file reads block); on
    // failure the old keys stay.
    void wait_for_reload() {
        reload_signal.async_wait([this](boost::system::error_code ec, int) {
            if (ec) return;
            net::post(reload_thread, [this] {
                try {
                    authenticator->reload();
                    log::info("reloaded the keys of --auth {}", auth::to_string(config.auth.mode));
                } catch (const std::exception& e) {
                    log::error("reload failed, keeping the keys in use: {}", e.what());
                }
            });
            wait_for_reload();
        });
    }

    net::awaitable<void> start() {
        // Before any send: what this node's previous process held is orphaned.
        auto released = co_await engine.release_previous_leases();
        if (!released) throw std::runtime_error("cannot release the previous process's leases");
        if (*released > 0)
            log::warn("{} answers were left generating by this node's previous process; taking "
                      "them over",
                      *released);
        // I5 across nodes: this node's leases stay renewed, and answers whose
        // node died, stalled past its lease or handed them over are taken
        // over (continued, or ended with what was stored); I4 across nodes:
        // cancels made on other nodes reach the answers this node runs.
        net::co_spawn(io, engine.keep_leases(), rethrow);
        net::co_spawn(io, engine.adopt_orphans(), rethrow);
        net::co_spawn(io, engine.watch_cancels(), rethrow);
        // Any node serves any stream: readers here follow what other nodes
        // commit, woken by the store's change notices.
        net::co_spawn(io, feeds.run(), rethrow);
        std::cout << "chatd listening on http://" << config.server.host << ":" << port << std::endl;
        if (config.provider != config::ProviderKind::simulated && config.upstream.api_key.empty())
            log::warn("${} is empty or unset: requests carry no API key (fine for local servers)",
                      config.api_key_env);
        warn_if_key_travels_in_clear();
        if (config.provider != config::ProviderKind::simulated)
            log::info("upstream {}{}", config.upstream.base_url,
                      config.upstream.proxy.empty()
                          ? std::string()
                          : " via proxy " +
                                llm::upstream::parse_proxy(config.upstream.proxy).hop.host_header);
        log::info(
            "listening on {}:{} (auth {}, provider {}, model {}, commit mode {}, node {})",
            config.server.host, port, auth::to_string(config.auth.mode), provider->name(),
            config.conversations.default_model,
            config.engine.persister.mode == engine::CommitMode::group ? "group" : "per-chunk",
            engine.lease().node);
        net::co_spawn(io, server.run(), rethrow);
    }

    // A key sent over plain http:// to another machine can be read on the way.
    void warn_if_key_travels_in_clear() const {
        if (config.provider == config::ProviderKind::simulated || config.upstream.api_key.empty())
            return;
        auto endpoint = llm::upstream::parse_endpoint(config.upstream.base_url, "");
        if (endpoint.tls) return;
        boost::system::error_code ec;
        auto address = net::ip::make_address(endpoint.host, ec);
        bool local = ec ? endpoint.host == "localhost" : auth::is_loopback(address);
        if (!local)
            log::warn(
                "the API key in ${} goes to {} over plain http://, readable on the way; "
                "use an https:// --base-url",
                config.api_key_env, endpoint.host);
    }

    // A graceful stop: live answers are stored and left to the next start
    // where it continues them, else ended as interrupted. However the store
    // behaves, the process exits shortly after --shutdown-timeout-ms.
    net::awaitable<void> stop() {
        bool hand_over = config.resume_interrupted && provider->can_continue();
        log::info("stopping: {} live answers", hand_over ? "storing and handing over" : "ending");
        server.stop();
        hard_stop.expires_after(config.engine.shutdown_timeout + std::chrono::seconds(2));
        hard_stop.async_wait([this](boost::system::error_code ec) {
            if (ec) return;
            log::error("stopping: the store did not finish in time; exiting");
            io.stop();
        });
        co_await engine.shutdown(hand_over ? engine::Shutdown::hand_over
                                           : engine::Shutdown::end_interrupted);
        feeds.stop();
    }

    // The first SIGTERM/SIGINT stops gracefully; a second exits at once
    // (what is committed is safe, as after a kill -9).
    void wait_for_stop_signal() {
        signals.async_wait([this](boost::system::error_code ec, int signal) {
            if (ec) return;
            if (stopping) {
                log::warn("signal {} during shutdown: exiting now", signal);
                log::flush();
                std::_Exit(128 + signal);
            }
            stopping = true;
            reload_signal.cancel();
            net::co_spawn(io, stop(), rethrow);
            wait_for_stop_signal();
        });
    }

    static void rethrow(std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    }

    int run() {
        net::co_spawn(io, engine.run(), [this](std::exception_ptr e) {
            rethrow(e);
            io.stop();  // the persister stopped: live answers are stored, or the store failed
        });
        net::co_spawn(io, start(), rethrow);
        wait_for_stop_signal();
        wait_for_reload();
        io.run();
        const auto& stats = engine.persister_stats();
        const auto followed = feeds.stats();
        log::info(
            "stopped; persister: commits={} failed_commits={} writes={} bytes={}; feeds: "
            "notices={} tail_reads={}",
            stats.commits, stats.failed_commits, stats.writes, stats.bytes, followed.notices,
            followed.tail_reads);
        return 0;
    }
};

}  // namespace

int main(int argc, char** argv) {
    auto parsed = config::parse(argc, argv);
    if (!parsed.config) {
        (parsed.exit_code == 0 ? std::cout : std::cerr) << parsed.message;
        return parsed.exit_code;
    }
    std::signal(SIGPIPE, SIG_IGN);
    log::init(parsed.config->log_level,
              parsed.config->log_format == "json" ? log::Format::json : log::Format::text);
    http::raise_descriptor_limit();
    try {
        check_listen_address(*parsed.config);
        App app(std::move(*parsed.config));
        return app.run();
    } catch (const std::exception& e) {
        log::error("fatal: {}", e.what());
        return 1;
    }
}
