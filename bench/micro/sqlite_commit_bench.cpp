// One group commit of N live streams' tokens on SQLite (SqliteStore::commit,
// the writer thread's hop included): the chunk log keyed by commit order
// alone, against the same store with the index by (message, offset) it had
// before, added back beside it, in the same run. Counters: bytes written
// to files per token (WAL frames, 4 KiB per dirty page, and checkpoints),
// tokens per second. Run:
// build/release/bin/chatd_micro --benchmark_filter=Sqlite
// BM_SqliteAnswer: one answer's store work from its session to its end;
// BM_SqliteCreateSession/N: a creation for a user with N sessions.
#include "core/ids.hpp"
#include "core/time.hpp"
#include "store/sqlite/sqlite_db.hpp"
#include "store/sqlite/sqlite_store.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <benchmark/benchmark.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace chatd;
namespace net = boost::asio;
namespace fs = std::filesystem;

template <class T>
T run(net::io_context& io, net::awaitable<T> task) {
    auto f = net::co_spawn(io, std::move(task), net::use_future);
    io.restart();
    while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
    return f.get();
}

// A directory of its own, removed afterwards.
class ScratchDir {
public:
    ScratchDir() {
        std::random_device rd;
        path_ = fs::temp_directory_path() / ("chatd-bench-" + std::to_string(rd()));
        fs::create_directories(path_);
    }
    ~ScratchDir() { fs::remove_all(path_); }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

// Bytes this process has handed to write() so far (/proc/self/io wchar):
// here, the database's files only.
std::uintmax_t written_bytes() {
    std::ifstream io("/proc/self/io");
    std::string key;
    std::uintmax_t value = 0;
    while (io >> key >> value)
        if (key == "wchar:") return value;
    return 0;
}

// CPU time of every thread of this process (the store's threads too), µs.
double process_cpu_us() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

void group_commit(benchmark::State& state, bool message_index) {
    const auto streams = static_cast<int>(state.range(0));
    ScratchDir dir;
    const auto file = dir.path() / "chatd.sqlite3";
    net::io_context io;
    store::sqlite::SqliteStore store({.path = file});
    const UserId user{"usr_bench"};
    std::vector<MessageId> live;
    for (int i = 0; i < streams; ++i) {
        auto s = run(io, store.create_session(user, {.title = "t", .model = "simulated"}));
        auto t = run(io, store.begin_turn(user, s->id, {.content = "q"}));
        live.push_back(t->turn->assistant_message.id);
    }
    if (message_index) {
        store::sqlite::Database(file.string(), store::sqlite::Database::Mode::read_write)
            .exec("CREATE UNIQUE INDEX ai_chat_message_chunks_by_message "
                  "ON ai_chat_message_chunks (message_id, byte_offset)");
    }
    const std::string token = "token ";
    std::int64_t offset = 0;
    auto commit = [&] {
        store::Batch batch{.at = now_millis()};
        batch.writes.reserve(live.size());
        for (const auto& id : live)
            batch.writes.push_back({.id = id, .offset = offset, .text = token});
        offset += static_cast<std::int64_t>(token.size());
        auto r = run(io, store.commit(std::move(batch)));
        if (!r) state.SkipWithError("commit failed");
    };
    for (int i = 0; i < 20; ++i) commit();  // every stream has chunks on pages of their own
    const auto before = written_bytes();
    for (auto _ : state) commit();
    const auto written = written_bytes() - before;
    const auto tokens = static_cast<double>(state.iterations()) * streams;
    state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
    state.counters["file_B/token"] = static_cast<double>(written) / tokens;
}

void BM_SqliteGroupCommit_Log(benchmark::State& state) { group_commit(state, false); }
void BM_SqliteGroupCommit_WithMessageIndex(benchmark::State& state) { group_commit(state, true); }

// One answer's life as the SQLite store sees it, each step a transaction
// of its own as under load: a session, its turn, the first token's commit
// and the end's (with the whole text), then the text read back. The
// per-answer cost that short answers pay on top of their tokens'.
void BM_SqliteAnswer(benchmark::State& state) {
    ScratchDir dir;
    net::io_context io;
    store::sqlite::SqliteStore store({.path = dir.path() / "chatd.sqlite3"});
    const UserId user{"usr_bench"};
    const std::string token = "token ";
    const auto cpu_before = process_cpu_us();
    for (auto _ : state) {
        auto s = run(io, store.create_session(user, {.title = "t", .model = "simulated"}));
        auto t = run(io, store.begin_turn(user, s->id, {.content = "q"}));
        if (!t || !t->turn) {
            state.SkipWithError("begin_turn failed");
            break;
        }
        const auto id = t->turn->assistant_message.id;
        store::Batch first{.writes = {{.id = id, .text = token}}, .at = now_millis()};
        store::Batch end{.writes = {{.id = id,
                                     .offset = static_cast<std::int64_t>(token.size()),
                                     .terminal = store::Terminal{},
                                     .full_content = token}},
                         .at = now_millis()};
        auto a = run(io, store.commit(first));
        auto b = run(io, store.commit(end));
        auto read = run(io, store.get_message(user, id));
        if (!a || !b || !read || read->content != token) {
            state.SkipWithError("the answer was not stored");
            break;
        }
    }
    state.counters["answers/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    state.counters["cpu_us/answer"] =
        (process_cpu_us() - cpu_before) / static_cast<double>(state.iterations());
}

// Creating a session for a user who has N already, under chatd's default
// per-user limit (10,000), which every creation checks.
void BM_SqliteCreateSession(benchmark::State& state) {
    ScratchDir dir;
    net::io_context io;
    store::sqlite::SqliteStore store({.path = dir.path() / "chatd.sqlite3"});
    const UserId user{"usr_bench"};
    const store::NewSession fields{.title = "t", .model = "simulated", .max_per_user = 10000};
    for (std::int64_t i = 0; i < state.range(0); ++i) run(io, store.create_session(user, fields));
    std::vector<SessionId> made;
    double cpu_deleting = 0;
    const auto cpu_before = process_cpu_us();
    for (auto _ : state) {
        auto s = run(io, store.create_session(user, fields));
        if (!s) {
            state.SkipWithError("create_session failed");
            break;
        }
        made.push_back(s->id);
        if (made.size() == 1000) {  // the user stays at about N sessions
            state.PauseTiming();
            const auto paused = process_cpu_us();
            for (const auto& id : made) run(io, store.delete_session(user, id));
            made.clear();
            cpu_deleting += process_cpu_us() - paused;
            state.ResumeTiming();
        }
    }
    state.counters["cpu_us/create"] =
        (process_cpu_us() - cpu_before - cpu_deleting) / static_cast<double>(state.iterations());
}

BENCHMARK(BM_SqliteGroupCommit_Log)->Arg(20)->Arg(200)->Arg(1000)->UseRealTime();
BENCHMARK(BM_SqliteCreateSession)->Arg(0)->Arg(5000)->UseRealTime();
BENCHMARK(BM_SqliteAnswer)->UseRealTime();
BENCHMARK(BM_SqliteGroupCommit_WithMessageIndex)->Arg(20)->Arg(200)->Arg(1000)->UseRealTime();

}  // namespace
