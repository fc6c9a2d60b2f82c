// chatd_load: the load generator of DESIGN §5. One thread, many connections.
//
// It creates N sessions, opens N connections, then sends one message per
// session with `Accept: text/event-stream` on each connection (all within as
// short a window as one thread allows) and reads every stream to its end. chatd
// must run with --sim-stamp-tokens, so every token is `@<scheduled emission
// time in µs since the epoch>:<8 hex digits> `; the arrival time of a token is
// the wall-clock time of the read that completed it, and its latency is
// arrival - stamp (same machine, same clock). Only tokens scheduled after the
// warm-up count for latency and throughput.
//
// Several nodes of one database: --url and --chatd-pid given K times (node k is
// the k-th of each). Stream i is created and sent on node i % K. With
// --read-elsewhere the send is a plain JSON POST on a connection of its own
// (opened before the start, closed after the answer), and the answer is read
// with `GET /messages/{id}/stream` from offset 0 on node (i + 1) % K, and
// checked against the content endpoint of node (i + 2) % K: every token then
// crosses the database from the generating node to the reading one. With
// K = 1 it is the same node, which is the baseline of that client flow.
// Without --read-elsewhere everything of stream i happens on node i % K.
//
// chatd's own cost comes from /proc/<pid> of every node: CPU (utime+stime of
// stat), peak RSS (VmHWM of status) and store writes (write_bytes of io, and
// wchar minus the bytes this client read from chatd's sockets, i.e. bytes
// chatd handed to write()/pwrite() on files). The chatd_* figures are the sums
// over the nodes; `nodes` has each node's. The generator reports its own CPU
// time too: it shares the machine's cores with chatd.
//
// It checks every stream: HTTP 200, delta offsets contiguous, every event id
// equal to `<message>.<end offset>`, the text made only of whole stamped
// tokens, exactly --tokens of them, a terminal `completed` status, and (unless
// --no-verify-content) the received text byte for byte equal to what the
// content endpoint answers afterwards. Exit code 0 only when all of that holds.
//
// Usage:
//   chatd_load --url http://127.0.0.1:8080 --chatd-pid PID --sessions N --tokens L --rate R
//   chatd_load --url URL1 --chatd-pid PID1 --url URL2 --chatd-pid PID2 --url URL3
//              --chatd-pid PID3 --read-elsewhere [--db-pid POSTMASTER] ...
// bench/run_load.sh starts chatd (--nodes K) and runs it.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::string_view kApi = "/api/v1/chat";

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// ---------------------------------------------------------------- /proc

struct ProcSample {
    bool ok = false;
    double cpu_s = 0;  // utime + stime, all threads
    double store_cpu_s = 0;  // of the threads named sqlite-* (chatd's SQLite store)
    std::uint64_t write_bytes = 0;
    std::uint64_t wchar = 0;
    std::int64_t at_us = 0;
};

std::optional<std::string> read_text(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::uint64_t field_value(const std::string& text, std::string_view key) {
    auto at = text.find(key);
    if (at == std::string::npos) return 0;
    at += key.size();
    while (at < text.size() && (text[at] == ' ' || text[at] == '\t' || text[at] == ':')) ++at;
    return std::strtoull(text.c_str() + at, nullptr, 10);
}

// The fields of /proc/<pid>/stat after the command name (which may contain
// spaces): fields[0] is state (field 3), [1] ppid, [11] utime, [12] stime,
// [13] cutime, [14] cstime.
std::vector<std::string> stat_fields(int pid) {
    std::vector<std::string> fields;
    auto stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    if (!stat) return fields;
    auto close = stat->rfind(')');
    if (close == std::string::npos || close + 2 > stat->size()) return fields;
    std::istringstream rest(stat->substr(close + 2));
    for (std::string f; rest >> f;) fields.push_back(f);
    return fields;
}

double clock_ticks() { return static_cast<double>(sysconf(_SC_CLK_TCK)); }

ProcSample sample_proc(int pid) {
    ProcSample s;
    s.at_us = now_us();
    auto fields = stat_fields(pid);
    auto io = read_text("/proc/" + std::to_string(pid) + "/io");
    if (fields.size() < 13 || !io) return s;
    s.cpu_s = (std::stod(fields[11]) + std::stod(fields[12])) / clock_ticks();
    // chatd names its store threads; the rest of its CPU is its I/O thread's.
    std::error_code ec;
    const auto tasks = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
        auto comm = read_text(task.path().string() + "/comm");
        if (!comm || !comm->starts_with("sqlite-")) continue;
        auto stat = read_text(task.path().string() + "/stat");
        auto close = stat ? stat->rfind(')') : std::string::npos;
        if (close == std::string::npos) continue;
        std::istringstream rest(stat->substr(close + 2));
        std::vector<std::string> f;
        for (std::string x; rest >> x;) f.push_back(x);
        if (f.size() >= 13) s.store_cpu_s += (std::stod(f[11]) + std::stod(f[12])) / clock_ticks();
    }
    s.write_bytes = field_value(*io, "\nwrite_bytes");
    s.wchar = field_value(*io, "wchar");
    s.ok = true;
    return s;
}

// A server made of processes, such as PostgreSQL's: the postmaster `pid` and
// its children (one backend per connection, the WAL writer, the
// checkpointer...). CPU also counts children that have exited (the
// postmaster's cutime/cstime); their writes are not counted.
ProcSample sample_process_tree(int pid) {
    ProcSample s = sample_proc(pid);
    auto root = stat_fields(pid);
    if (!s.ok || root.size() < 15) return ProcSample{};
    s.cpu_s += (std::stod(root[13]) + std::stod(root[14])) / clock_ticks();
    const auto parent = std::to_string(pid);
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const auto name = entry.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        const int child = std::stoi(name);
        auto fields = stat_fields(child);
        if (fields.size() < 13 || fields[1] != parent) continue;
        auto c = sample_proc(child);  // it may have exited meanwhile
        if (!c.ok) continue;
        s.cpu_s += c.cpu_s;
        s.write_bytes += c.write_bytes;
        s.wchar += c.wchar;
    }
    return s;
}

std::uint64_t status_kb(int pid, std::string_view key) {
    auto status = read_text("/proc/" + std::to_string(pid) + "/status");
    return status ? field_value(*status, key) : 0;
}

// ---------------------------------------------------------------- options

struct Options {
    std::vector<std::string> urls;  // one per node
    std::vector<int> chatd_pids;    // urls[k]'s process
    std::size_t sessions = 100;
    std::size_t waves = 1;  // answers per stream slot, one after the other
    double ramp_s = 0;      // the first wave's starts spread evenly over this
    std::size_t idle_streams = 0;  // session streams held open idle before the load
    std::size_t idle_batch = 0;    // opened this many at a time (0: all at once)
    std::size_t resumes = 0;  // Last-Event-ID reconnects of live and of ended answers, each
    std::size_t tokens = 500;
    double rate = 50;
    bool read_elsewhere = false;
    int db_pid = 0;  // the database server's main process, when it has one
    double warmup_s = 2;
    double timeout_s = 170;
    std::size_t http_concurrency = 16;
    bool verify_content = true;
    bool timeline = false;
    std::string json_path;
    std::string label;
};

// One chatd process: where it listens and what /proc says about it.
struct Node {
    std::string url;
    std::string host;
    std::string port;
    int pid = 0;
    tcp::endpoint endpoint;
    ProcSample go, window, end;
    std::uint64_t hwm_kb = 0, rss_end_kb = 0;
};

bool split_url(Node& n) {
    std::string_view u = n.url;
    constexpr std::string_view scheme = "http://";
    if (u.substr(0, scheme.size()) != scheme) return false;
    u.remove_prefix(scheme.size());
    if (auto slash = u.find('/'); slash != std::string_view::npos) u = u.substr(0, slash);
    auto colon = u.rfind(':');
    if (colon == std::string_view::npos) {
        n.host = std::string(u);
        n.port = "80";
    } else {
        n.host = std::string(u.substr(0, colon));
        n.port = std::string(u.substr(colon + 1));
    }
    return !n.host.empty() && !n.port.empty();
}

// ---------------------------------------------------------------- state

// Counts down to zero; wait() returns once it is there.
class Latch {
public:
    Latch(net::any_io_executor ex, std::size_t count) : timer_(ex), count_(count) {
        timer_.expires_at(std::chrono::steady_clock::time_point::max());
    }
    void count_down() {
        if (count_ > 0 && --count_ == 0) timer_.cancel();
    }
    net::awaitable<void> wait() {
        while (count_ > 0) co_await timer_.async_wait(use_tuple);
    }

private:
    net::steady_timer timer_;
    std::size_t count_;
};

struct Stream {
    std::size_t index = 0;
    std::string session_id;
    std::string message_id;
    std::unique_ptr<tcp::socket> socket;  // the stream's, to its reading node
    // --read-elsewhere: the send's own connection, to the sending node.
    std::unique_ptr<beast::tcp_stream> sender;

    // Parsing.
    std::string pending;  // bytes not yet consumed (headers or a partial event)
    bool headers_done = false;
    int http_status = 0;
    std::string text;      // the message text received so far
    std::size_t scan = 0;  // start of the first token of `text` not yet counted

    // Results.
    std::size_t tokens = 0;
    std::size_t deltas = 0;
    std::int64_t first_stamp = 0;
    std::int64_t last_stamp = 0;
    std::int64_t first_arrival = 0;  // of its first token
    std::int64_t last_arrival = 0;   // of its latest token
    std::int64_t send_started_at = 0;
    std::int64_t sent_at = 0;
    std::int64_t post_us = -1;  // --read-elsewhere: the send's exchange
    std::int64_t headers_at = 0;
    std::int64_t done_at = 0;
    std::string terminal;  // status of the terminal status event
    std::int64_t output_tokens = -1;
    std::uint64_t bytes_read = 0;
    std::string error;  // the first problem seen
    bool content_checked = false;
    bool content_verified = false;

    void fail(std::string why) {
        if (error.empty()) error = std::move(why);
    }
};

struct Run {
    Options opt;
    net::io_context& io;
    std::vector<Node> nodes;
    std::vector<Stream> streams;

    // Measurement.
    std::int64_t measure_from = std::numeric_limits<std::int64_t>::max();
    std::vector<std::int64_t> latencies;  // µs, tokens stamped at/after measure_from
    // µs between a token's arrival and its predecessor's in the same stream
    // (0 for tokens that came in one read), tokens stamped at/after measure_from.
    std::vector<std::int64_t> gaps;
    // Every token, for the per-second timeline: (stamp, latency) in µs.
    std::vector<std::pair<std::int64_t, std::int64_t>> all_tokens;
    std::uint64_t tokens_total = 0;
    std::uint64_t tokens_arrived_in_window = 0;  // arrived at/after measure_from
    std::int64_t first_arrival = 0;
    std::int64_t last_arrival = 0;
    std::uint64_t socket_bytes = 0;  // everything read from chatd in the generation phase
    std::uint64_t stamp_regressions = 0;
    json::parser parser;

    // Phases.
    std::int64_t create_start = 0, create_end = 0;
    std::int64_t connect_start = 0, connect_end = 0;
    std::int64_t go_at = 0, all_sent_at = 0, all_headers_at = 0, all_done_at = 0;
    ProcSample db_go, db_end;
    ProcSample self_go, self_end;
    bool timed_out = false;
    std::size_t create_failures = 0;
    std::string first_create_error;
    std::size_t verify_failures = 0;
    // --idle-streams: how many opened, and chatd's (first node's) RSS around it.
    std::size_t idle_opened = 0;
    std::string idle_error;
    std::uint64_t idle_rss_before_kb = 0, idle_rss_after_kb = 0;
    // A live stream's memory: chatd's RSS (every node's) before the first
    // send and in the middle of the first answers, the streams live then and
    // the text they had received by then.
    std::uint64_t live_rss_before_kb = 0, live_rss_mid_kb = 0;
    std::size_t live_streams_mid = 0;
    std::uint64_t live_text_bytes_mid = 0;
    // --resumes: µs from a reconnect's start to the first byte of the text it
    // missed, for answers still generating and for answers that had ended.
    std::vector<std::int64_t> resume_live_us, resume_ended_us;
    std::size_t resume_failures = 0, resume_skipped = 0;
    std::string resume_error;

    Run(Options o, net::io_context& ctx) : opt(std::move(o)), io(ctx) {}
};

// The nodes stream i talks to. Its session and its generation live on
// send_node; with --read-elsewhere the reader and the content check are on
// the nodes after it, so that (with K > 1) no answer is read on the node
// that generates it.
std::size_t send_node(const Run& run, std::size_t i) {
    return i % run.nodes.size();
}

std::size_t read_node(const Run& run, std::size_t i) {
    return run.opt.read_elsewhere ? (i + 1) % run.nodes.size() : send_node(run, i);
}

std::size_t verify_node(const Run& run, std::size_t i) {
    return run.opt.read_elsewhere ? (i + 2) % run.nodes.size() : send_node(run, i);
}

// ---------------------------------------------------------------- HTTP calls

struct HttpResult {
    int status = 0;
    std::string body;
    std::string error;
};

// `read_bytes` counts what was read from chatd.
net::awaitable<HttpResult> http_call(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                     const Node& node, bhttp::verb verb, std::string target,
                                     std::string body, std::uint64_t* read_bytes = nullptr) {
    HttpResult result;
    bhttp::request<bhttp::string_body> req(verb, target, 11);
    req.set(bhttp::field::host, node.host);
    req.keep_alive(true);
    if (verb == bhttp::verb::post) {
        req.set(bhttp::field::content_type, "application/json");
        req.body() = std::move(body);
        req.prepare_payload();
    }
    stream.expires_after(std::chrono::seconds(30));
    auto [wec, wn] = co_await bhttp::async_write(stream, req, use_tuple);
    (void)wn;
    if (wec) {
        result.error = "write: " + wec.message();
        co_return result;
    }
    bhttp::response<bhttp::string_body> res;
    auto [rec, rn] = co_await bhttp::async_read(stream, buffer, res, use_tuple);
    if (read_bytes) *read_bytes += rn;
    stream.expires_never();
    if (rec) {
        result.error = "read: " + rec.message();
        co_return result;
    }
    result.status = static_cast<int>(res.result_int());
    result.body = std::move(res.body());
    co_return result;
}

// One keep-alive connection to `node` that runs `job(i)` for the indices of
// `queue` it takes (it shares the queue with the node's other workers).
template <class Job>
net::awaitable<void> http_worker(Run& run, std::size_t node, const std::vector<std::size_t>& queue,
                                 std::size_t& next, Job& job, Latch& done) {
    beast::tcp_stream stream(run.io.get_executor());
    beast::flat_buffer buffer;
    bool connected = false;
    while (next < queue.size()) {
        std::size_t i = queue[next++];
        if (!connected) {
            auto [ec] = co_await stream.socket().async_connect(run.nodes[node].endpoint, use_tuple);
            if (ec) {
                auto connect_error = std::optional<std::string>(ec.message());
                co_await job(stream, buffer, i, connect_error);
                continue;
            }
            connected = true;
        }
        auto no_error = std::optional<std::string>();
        bool keep = co_await job(stream, buffer, i, no_error);
        if (!keep) {
            boost::system::error_code ignored;
            stream.socket().close(ignored);  // the next async_connect reopens it
            buffer.clear();
            connected = false;
        }
    }
    done.count_down();
}

// Runs `job(i)` for every i in [0, count) on http_concurrency keep-alive
// connections per node, job i on node `node_of(i)`.
template <class NodeOf, class Job>
net::awaitable<void> on_http_workers(Run& run, std::size_t count, NodeOf node_of, Job job) {
    std::vector<std::vector<std::size_t>> queues(run.nodes.size());
    for (std::size_t i = 0; i < count; ++i) queues[node_of(run, i)].push_back(i);
    std::vector<std::size_t> next(run.nodes.size(), 0);
    std::vector<std::size_t> workers(run.nodes.size(), 0);
    std::size_t all_workers = 0;
    for (std::size_t k = 0; k < queues.size(); ++k) {
        workers[k] = std::min(run.opt.http_concurrency, queues[k].size());
        all_workers += workers[k];
    }
    Latch done(run.io.get_executor(), all_workers);
    for (std::size_t k = 0; k < queues.size(); ++k)
        for (std::size_t w = 0; w < workers[k]; ++w)
            net::co_spawn(run.io, http_worker(run, k, queues[k], next[k], job, done),
                          net::detached);
    co_await done.wait();
}

net::awaitable<void> create_sessions(Run& run) {
    run.create_start = now_us();
    auto job = [&run](beast::tcp_stream& stream, beast::flat_buffer& buffer, std::size_t i,
                      std::optional<std::string> connect_error) -> net::awaitable<bool> {
        auto& s = run.streams[i];
        if (connect_error) {
            s.fail("create session: connect: " + *connect_error);
            co_return false;
        }
        std::string target = std::string(kApi) + "/sessions";
        std::string body = R"({"title":"bench )" + std::to_string(i) + R"("})";
        auto r = co_await http_call(stream, buffer, run.nodes[send_node(run, i)], bhttp::verb::post,
                                    target, body);
        if (!r.error.empty() || r.status != 201) {
            s.fail("create session: " + (r.error.empty() ? "HTTP " + std::to_string(r.status) + " " + r.body
                                                          : r.error));
            co_return false;
        }
        boost::system::error_code ec;
        auto v = json::parse(r.body, ec);
        if (ec || !v.is_object() || !v.as_object().contains("id") ||
            !v.as_object().at("id").is_string()) {
            s.fail("create session: no id in " + r.body);
            co_return true;
        }
        s.session_id = std::string(v.as_object().at("id").as_string());
        co_return true;
    };
    co_await on_http_workers(run, run.streams.size(), send_node, job);
    run.create_end = now_us();
    for (auto& s : run.streams) {
        if (s.session_id.empty()) {
            ++run.create_failures;
            if (run.first_create_error.empty()) run.first_create_error = s.error;
        }
    }
}

net::awaitable<void> verify_contents(Run& run) {
    auto job = [&run](beast::tcp_stream& stream, beast::flat_buffer& buffer, std::size_t i,
                      std::optional<std::string> connect_error) -> net::awaitable<bool> {
        auto& s = run.streams[i];
        if (s.message_id.empty() || !s.error.empty()) co_return true;
        s.content_checked = true;
        if (connect_error) {
            s.fail("verify: connect: " + *connect_error);
            co_return false;
        }
        std::string target = std::string(kApi) + "/messages/" + s.message_id + "/content";
        std::string no_body;
        auto r = co_await http_call(stream, buffer, run.nodes[verify_node(run, i)],
                                    bhttp::verb::get, target, no_body);
        if (!r.error.empty() || r.status != 200) {
            s.fail("verify: " + (r.error.empty() ? "HTTP " + std::to_string(r.status) : r.error));
            co_return false;
        }
        boost::system::error_code ec;
        auto v = json::parse(r.body, ec);
        const json::object* o = (!ec && v.is_object()) ? &v.as_object() : nullptr;
        if (!o || !o->contains("content") || !o->at("content").is_string()) {
            s.fail("verify: no content in the answer");
            co_return true;
        }
        auto content = o->at("content").as_string();
        if (std::string_view(content) != s.text) {
            std::size_t at = 0;
            while (at < s.text.size() && at < content.size() && s.text[at] == content[at]) ++at;
            s.fail("verify: stored content (" + std::to_string(content.size()) +
                   " bytes) differs from the streamed text (" + std::to_string(s.text.size()) +
                   " bytes) at byte " + std::to_string(at));
            co_return true;
        }
        auto* status = o->if_contains("status");
        if (!status || !status->is_string() || status->as_string() != "completed") {
            s.fail("verify: stored status is not completed");
            co_return true;
        }
        s.content_verified = true;
        co_return true;
    };
    co_await on_http_workers(run, run.streams.size(), verify_node, job);
    for (auto& s : run.streams)
        if (s.content_checked && !s.content_verified) ++run.verify_failures;
}

// ---------------------------------------------------------------- SSE

std::optional<std::int64_t> json_int(const json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    if (!v) return std::nullopt;
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
    return std::nullopt;
}

std::optional<json::object> parse_object(Run& run, std::string_view data) {
    boost::system::error_code ec;
    run.parser.reset();
    run.parser.write(data.data(), data.size(), ec);  // the whole text: parse and finish
    if (ec) return std::nullopt;
    auto v = run.parser.release();
    if (!v.is_object()) return std::nullopt;
    return std::move(v.as_object());
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// Counts the whole tokens that `text` has gained since `scan`.
void count_tokens(Run& run, Stream& s, std::int64_t arrived) {
    std::string_view t = s.text;
    for (;;) {
        auto space = t.find(' ', s.scan);
        if (space == std::string_view::npos) return;
        auto token = t.substr(s.scan, space - s.scan);
        // `@<digits>:<8 hex>`
        auto colon = token.find(':');
        bool ok = token.size() >= 3 && token[0] == '@' && colon != std::string_view::npos &&
                  colon > 1 && token.size() - colon - 1 == 8;
        std::int64_t stamp = 0;
        for (std::size_t i = 1; ok && i < colon; ++i) {
            if (token[i] < '0' || token[i] > '9') ok = false;
            else stamp = stamp * 10 + (token[i] - '0');
        }
        for (std::size_t i = colon + 1; ok && i < token.size(); ++i) ok = is_hex(token[i]);
        if (!ok) {
            s.fail("malformed token at byte " + std::to_string(s.scan) + ": '" +
                   std::string(token.substr(0, 40)) + "' (is chatd running with "
                   "--sim-stamp-tokens?)");
            s.scan = t.size();
            return;
        }
        if (s.tokens == 0) {
            s.first_stamp = stamp;
            s.first_arrival = arrived;
        } else if (stamp >= run.measure_from) {
            run.gaps.push_back(arrived - s.last_arrival);
        }
        s.last_arrival = arrived;
        if (stamp < s.last_stamp) ++run.stamp_regressions;
        s.last_stamp = stamp;
        ++s.tokens;
        ++run.tokens_total;
        if (arrived >= run.measure_from) ++run.tokens_arrived_in_window;
        if (stamp >= run.measure_from) run.latencies.push_back(arrived - stamp);
        run.all_tokens.emplace_back(stamp, arrived - stamp);
        if (run.first_arrival == 0) run.first_arrival = arrived;
        run.last_arrival = std::max(run.last_arrival, arrived);
        s.scan = space + 1;
    }
}

std::string cursor_of(const Stream& s, std::size_t offset) {
    return s.message_id + "." + std::to_string(offset);
}

void on_event(Run& run, Stream& s, std::string_view event, std::string_view id,
              std::string_view data, std::int64_t arrived) {
    if (event == "delta") {
        auto o = parse_object(run, data);
        if (!o) return s.fail("delta: data is not a JSON object");
        auto* mid = o->if_contains("message_id");
        auto* text = o->if_contains("text");
        auto offset = json_int(*o, "offset");
        if (!mid || !mid->is_string() || !text || !text->is_string() || !offset)
            return s.fail("delta: missing message_id, offset or text");
        if (s.message_id.empty()) s.message_id = std::string(mid->as_string());
        if (mid->as_string() != s.message_id) return s.fail("delta: of another message");
        if (*offset != static_cast<std::int64_t>(s.text.size()))
            return s.fail("delta: offset " + std::to_string(*offset) + " where " +
                          std::to_string(s.text.size()) + " was expected (gap or overlap)");
        auto piece = text->as_string();
        if (piece.empty()) return s.fail("delta: empty text");
        s.text.append(piece.data(), piece.size());
        if (id != cursor_of(s, s.text.size()))
            return s.fail("delta: event id '" + std::string(id) + "' is not the end cursor '" +
                          cursor_of(s, s.text.size()) + "'");
        ++s.deltas;
        count_tokens(run, s, arrived);
        return;
    }
    if (event == "status") {
        auto o = parse_object(run, data);
        if (!o) return s.fail("status: data is not a JSON object");
        auto* mid = o->if_contains("id");
        auto* status = o->if_contains("status");
        if (!mid || !mid->is_string() || !status || !status->is_string())
            return s.fail("status: missing id or status");
        if (s.message_id.empty()) s.message_id = std::string(mid->as_string());
        if (mid->as_string() != s.message_id) return s.fail("status: of another message");
        if (id != cursor_of(s, s.text.size()))
            return s.fail("status: event id '" + std::string(id) + "' is not the end cursor '" +
                          cursor_of(s, s.text.size()) + "'");
        std::string st(status->as_string());
        if (st != "generating") {
            if (!s.terminal.empty()) return s.fail("status: a second terminal status");
            s.terminal = st;
            if (auto* usage = o->if_contains("usage"); usage && usage->is_object())
                if (auto n = json_int(usage->as_object(), "output_tokens")) s.output_tokens = *n;
        }
        return;
    }
    if (!event.empty()) s.fail("unexpected event '" + std::string(event) + "'");
}

// Consumes complete events from s.pending.
void parse_events(Run& run, Stream& s, std::int64_t arrived) {
    std::size_t at = 0;
    std::string_view p = s.pending;
    if (!s.headers_done) {
        auto end = p.find("\r\n\r\n");
        if (end == std::string_view::npos) return;
        auto head = p.substr(0, end);
        // "HTTP/1.1 200 OK"
        auto sp = head.find(' ');
        if (sp != std::string_view::npos) s.http_status = std::atoi(std::string(head.substr(sp + 1, 3)).c_str());
        s.headers_done = true;
        s.headers_at = arrived;
        at = end + 4;
        if (s.http_status != 200) {
            s.fail("HTTP " + std::to_string(s.http_status) + ": " +
                   std::string(p.substr(at, 300)));
            s.pending.clear();
            return;
        }
    }
    if (s.http_status != 200) {
        s.pending.clear();
        return;
    }
    for (;;) {
        auto end = p.find("\n\n", at);
        if (end == std::string_view::npos) break;
        auto block = p.substr(at, end - at);
        at = end + 2;
        std::string_view event, id;
        std::string data;
        bool has_data = false;
        while (!block.empty()) {
            auto nl = block.find('\n');
            auto line = block.substr(0, nl);
            block = nl == std::string_view::npos ? std::string_view{} : block.substr(nl + 1);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.empty() || line[0] == ':') continue;
            auto colon = line.find(':');
            auto name = line.substr(0, colon);
            auto value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
            if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
            if (name == "event") event = value;
            else if (name == "id") id = value;
            else if (name == "data") {
                if (has_data) data += '\n';
                data.append(value.data(), value.size());
                has_data = true;
            }
        }
        if (has_data) on_event(run, s, event.empty() ? "message" : event, id, data, arrived);
    }
    s.pending.erase(0, at);
}

// Opens the stream's connection to its reading node and, with
// --read-elsewhere, the send's to its sending node: before the start, so that
// the start is only requests.
net::awaitable<void> connect_one(Run& run, Stream& s, Latch& done) {
    s.socket = std::make_unique<tcp::socket>(run.io);
    auto [ec] =
        co_await s.socket->async_connect(run.nodes[read_node(run, s.index)].endpoint, use_tuple);
    if (ec) s.fail("connect: " + ec.message());
    else s.socket->set_option(tcp::no_delay(true));
    if (!ec && run.opt.read_elsewhere) {
        s.sender = std::make_unique<beast::tcp_stream>(run.io.get_executor());
        auto [sec] = co_await s.sender->socket().async_connect(
            run.nodes[send_node(run, s.index)].endpoint, use_tuple);
        if (sec)
            s.fail("connect (send): " + sec.message());
        else
            s.sender->socket().set_option(tcp::no_delay(true));
    }
    done.count_down();
}

std::string message_body(const Stream& s) {
    return R"({"content":"benchmark prompt )" + std::to_string(s.index) + R"("})";
}

// The send whose answer is the stream.
std::string send_and_stream_request(const Run& run, const Stream& s) {
    std::string body = message_body(s);
    return "POST " + std::string(kApi) + "/sessions/" + s.session_id +
           "/messages HTTP/1.1\r\n"
           "Host: " + run.nodes[send_node(run, s.index)].host + "\r\n"
           "Accept: text/event-stream\r\n"
           "Content-Type: application/json\r\n"
           "Content-Length: " + std::to_string(body.size()) + "\r\n"
           "\r\n" + body;
}

// --read-elsewhere: the answer's stream from offset 0, on the reading node.
std::string stream_request(const Run& run, const Stream& s) {
    return "GET " + std::string(kApi) + "/messages/" + s.message_id +
           "/stream HTTP/1.1\r\n"
           "Host: " + run.nodes[read_node(run, s.index)].host + "\r\n"
           "Accept: text/event-stream\r\n"
           "\r\n";
}

// --read-elsewhere: sends the message as a plain JSON POST on the stream's
// send connection, which then closes, and takes the assistant message's id
// from the answer. False (and s.error) when that fails.
net::awaitable<bool> post_message(Run& run, Stream& s) {
    beast::flat_buffer buffer;
    std::string target = std::string(kApi) + "/sessions/" + s.session_id + "/messages";
    const auto started = now_us();
    // chatd's answer is written in the measured phase, like the streams.
    auto r = co_await http_call(*s.sender, buffer, run.nodes[send_node(run, s.index)],
                                bhttp::verb::post, target, message_body(s), &run.socket_bytes);
    s.post_us = now_us() - started;
    boost::system::error_code ignored;
    s.sender->socket().close(ignored);
    if (!r.error.empty() || (r.status != 201 && r.status != 202)) {
        s.fail("send: " +
               (r.error.empty() ? "HTTP " + std::to_string(r.status) + " " + r.body : r.error));
        co_return false;
    }
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    const json::value* id = nullptr;
    if (!ec && v.is_object())
        if (auto* m = v.as_object().if_contains("assistant_message"); m && m->is_object())
            id = m->as_object().if_contains("id");
    if (!id || !id->is_string() || id->as_string().empty()) {
        s.fail("send: no assistant_message.id in " + r.body.substr(0, 300));
        co_return false;
    }
    s.message_id = std::string(id->as_string());
    co_return true;
}

void start_stream(Run& run, std::size_t i, Latch& sent, Latch& headers, Latch& done);

// The first wave's streams start together; they alone count for `sent` and
// `headers` (the start of the load).
bool first_wave(const Run& run, const Stream& s) { return s.index < run.opt.sessions; }

net::awaitable<void> stream_one(Run& run, Stream& s, Latch& sent, Latch& headers, Latch& done) {
    std::string request;
    s.send_started_at = now_us();
    if (!run.opt.read_elsewhere)
        request = send_and_stream_request(run, s);
    else if (co_await post_message(run, s))
        request = stream_request(run, s);
    boost::system::error_code wec;
    if (!request.empty()) {
        auto out = net::buffer(request);
        auto [ec, wn] = co_await net::async_write(*s.socket, out, use_tuple);
        (void)wn;
        wec = ec;
    }
    s.sent_at = now_us();
    if (first_wave(run, s)) sent.count_down();
    bool counted_headers = !first_wave(run, s);
    if (request.empty()) {
        // post_message said why.
    } else if (wec) {
        s.fail((run.opt.read_elsewhere ? "stream request: " : "send: ") + wec.message());
    } else {
        std::array<char, 16384> buf;
        for (;;) {
            auto in = net::buffer(buf);
            auto [ec, n] = co_await s.socket->async_read_some(in, use_tuple);
            auto arrived = now_us();
            if (n > 0) {
                s.bytes_read += n;
                run.socket_bytes += n;
                s.pending.append(buf.data(), n);
                parse_events(run, s, arrived);
                if (s.headers_done && !counted_headers) {
                    counted_headers = true;
                    headers.count_down();
                }
            }
            if (ec) {
                if (ec != net::error::eof)
                    s.fail(run.timed_out ? "timed out" : "read: " + ec.message());
                break;
            }
        }
        s.done_at = now_us();
    }
    if (!counted_headers) headers.count_down();
    if (s.error.empty()) {
        if (!s.pending.empty()) s.fail("stream ended inside an event");
        else if (s.terminal.empty()) s.fail("stream ended without a terminal status");
        else if (s.terminal != "completed") s.fail("terminal status '" + s.terminal + "'");
        else if (s.scan != s.text.size()) s.fail("text ends inside a token");
        else if (s.tokens != run.opt.tokens)
            s.fail(std::to_string(s.tokens) + " tokens received, " +
                   std::to_string(run.opt.tokens) + " expected");
        else if (s.output_tokens >= 0 && static_cast<std::size_t>(s.output_tokens) != s.tokens)
            s.fail("usage.output_tokens " + std::to_string(s.output_tokens) + " but " +
                   std::to_string(s.tokens) + " tokens received");
    }
    boost::system::error_code ignored;
    s.socket->close(ignored);
    // --waves: this slot's next answer starts when this one has ended.
    if (s.index + run.opt.sessions < run.streams.size() && !run.timed_out)
        start_stream(run, s.index + run.opt.sessions, sent, headers, done);
    done.count_down();
}

void start_stream(Run& run, std::size_t i, Latch& sent, Latch& headers, Latch& done) {
    auto& s = run.streams[i];
    if (s.error.empty()) {
        net::co_spawn(run.io, stream_one(run, s, sent, headers, done), net::detached);
        return;
    }
    // It could not connect: counted as started and ended.
    if (first_wave(run, s)) {
        sent.count_down();
        headers.count_down();
    }
    if (i + run.opt.sessions < run.streams.size())
        start_stream(run, i + run.opt.sessions, sent, headers, done);
    done.count_down();
}

// Opens one idle session stream (`GET /messages/stream?session_id=`, with no
// answer to come) on the first node and reads its head; `socket` holds it.
net::awaitable<void> open_idle_stream(Run& run, std::size_t i, tcp::socket& socket, Latch& opened) {
    const auto& node = run.nodes.front();
    const auto& session = run.streams[i % run.streams.size()].session_id;
    std::string request = "GET " + std::string(kApi) + "/messages/stream?session_id=" + session +
                          " HTTP/1.1\r\nHost: " + node.host + "\r\nAccept: text/event-stream\r\n\r\n";
    std::string head;
    auto [ec] = co_await socket.async_connect(node.endpoint, use_tuple);
    if (!ec) {
        auto out = net::buffer(request);
        auto [wec, wn] = co_await net::async_write(socket, out, use_tuple);
        (void)wn;
        ec = wec;
    }
    std::array<char, 4096> buf;
    while (!ec && head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
        auto in = net::buffer(buf);
        auto [rec, n] = co_await socket.async_read_some(in, use_tuple);
        head.append(buf.data(), n);
        ec = rec;
    }
    if (!ec && head.starts_with("HTTP/1.1 200"))
        ++run.idle_opened;
    else if (run.idle_error.empty())
        run.idle_error = ec ? ec.message() : head.substr(0, head.find('\r'));
    opened.count_down();
}

// Holds --idle-streams session streams open at once and reads chatd's RSS
// before and once they are all open (and settled); then closes them.
net::awaitable<void> measure_idle_streams(Run& run) {
    auto ex = run.io.get_executor();
    const int pid = run.nodes.front().pid;
    run.idle_rss_before_kb = status_kb(pid, "VmRSS");
    std::vector<tcp::socket> sockets;
    sockets.reserve(run.opt.idle_streams);
    for (std::size_t i = 0; i < run.opt.idle_streams; ++i) sockets.emplace_back(ex);
    const std::size_t batch = run.opt.idle_batch > 0 ? run.opt.idle_batch : run.opt.idle_streams;
    for (std::size_t first = 0; first < run.opt.idle_streams; first += batch) {
        const auto last = std::min(first + batch, run.opt.idle_streams);
        Latch opened(ex, last - first);
        for (std::size_t i = first; i < last; ++i)
            net::co_spawn(ex, open_idle_stream(run, i, sockets[i], opened), net::detached);
        co_await opened.wait();
    }
    net::steady_timer settle(ex, std::chrono::milliseconds(500));
    co_await settle.async_wait(use_tuple);
    run.idle_rss_after_kb = status_kb(pid, "VmRSS");
    for (auto& socket : sockets) {
        boost::system::error_code ignored;
        socket.close(ignored);
    }
    // chatd notices the closes; the load starts once it has.
    settle.expires_after(std::chrono::milliseconds(500));
    co_await settle.async_wait(use_tuple);
}

// One --resumes reconnect: a new connection asks for stream s's message
// from the middle of the text s has received, with Last-Event-ID as a client
// that lost its connection would, and times the first byte of the text after
// it (a delta starting at that offset).
net::awaitable<void> resume_one(Run& run, std::size_t i, bool ended) {
    const auto& s = run.streams[i];
    const auto node = run.nodes[read_node(run, i)];
    const std::size_t offset = s.text.size() / 2;
    const std::string id = s.message_id;
    auto fail = [&](std::string why) {
        ++run.resume_failures;
        if (run.resume_error.empty()) run.resume_error = std::move(why);
    };
    tcp::socket socket(run.io);
    net::steady_timer limit(run.io, std::chrono::seconds(5));
    limit.async_wait([&socket](boost::system::error_code ec) {
        boost::system::error_code ignored;
        if (!ec) socket.close(ignored);
    });
    const auto started = now_us();
    auto [cec] = co_await socket.async_connect(node.endpoint, use_tuple);
    if (cec) co_return fail("resume connect: " + cec.message());
    socket.set_option(tcp::no_delay(true));
    std::string request = "GET " + std::string(kApi) + "/messages/" + id +
                          "/stream HTTP/1.1\r\nHost: " + node.host +
                          "\r\nAccept: text/event-stream\r\nLast-Event-ID: " + id + "." +
                          std::to_string(offset) + "\r\n\r\n";
    auto out = net::buffer(request);
    auto [wec, wn] = co_await net::async_write(socket, out, use_tuple);
    (void)wn;
    if (wec) co_return fail("resume request: " + wec.message());
    std::string got;
    std::array<char, 16384> buf;
    const std::string want = "\"offset\":" + std::to_string(offset) + ",";
    for (;;) {
        auto in = net::buffer(buf);
        auto [rec, n] = co_await socket.async_read_some(in, use_tuple);
        got.append(buf.data(), n);
        // The first delta after the headers: it must start at the cursor.
        auto head = got.find("\r\n\r\n");
        if (head != std::string::npos && !got.starts_with("HTTP/1.1 200"))
            co_return fail("resume: " + got.substr(0, got.find('\r')));
        auto delta = head == std::string::npos ? head : got.find("event: delta", head);
        auto end = delta == std::string::npos ? delta : got.find("\n\n", delta);
        if (end != std::string::npos) {
            if (got.substr(delta, end - delta).find(want) == std::string::npos)
                co_return fail("resume: the first delta does not start at byte " +
                               std::to_string(offset) + ": " + got.substr(delta, 200));
            (ended ? run.resume_ended_us : run.resume_live_us).push_back(now_us() - started);
            break;
        }
        if (rec) co_return fail("resume read: " + rec.message());
    }
    limit.cancel();
    boost::system::error_code ignored;
    socket.close(ignored);
}

// --resumes K: K reconnects to answers still generating and K to answers
// that have ended, alternating, spread over the middle of the load (from 30 %
// to 90 % of its expected length), each to a stream picked at random.
net::awaitable<void> run_resumes(Run& run) {
    const double answer_s = static_cast<double>(run.opt.tokens) / run.opt.rate;
    const double total_s = run.opt.ramp_s + static_cast<double>(run.opt.waves) * answer_s;
    const auto start = std::chrono::steady_clock::now();
    std::mt19937 pick(12345);
    net::steady_timer timer(run.io);
    const std::size_t count = 2 * run.opt.resumes;
    for (std::size_t k = 0; k < count && !run.timed_out; ++k) {
        const double at = total_s * (0.3 + 0.6 * static_cast<double>(k) / static_cast<double>(count));
        timer.expires_at(start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                     std::chrono::duration<double>(at)));
        co_await timer.async_wait(use_tuple);
        const bool ended = k % 2 == 1;
        std::vector<std::size_t> candidates;
        for (std::size_t i = 0; i < run.streams.size(); ++i) {
            const auto& s = run.streams[i];
            if (!s.error.empty() || s.message_id.empty() || s.text.size() < 2) continue;
            if (ended ? s.terminal == "completed" : s.terminal.empty()) candidates.push_back(i);
        }
        if (candidates.empty()) {
            ++run.resume_skipped;
            continue;
        }
        auto i = candidates[std::uniform_int_distribution<std::size_t>(0, candidates.size() - 1)(pick)];
        net::co_spawn(run.io, resume_one(run, i, ended), net::detached);
    }
}

net::awaitable<void> run_load(Run& run) {
    auto ex = run.io.get_executor();
    tcp::resolver resolver(ex);
    for (auto& node : run.nodes) {
        auto [rec, results] = co_await resolver.async_resolve(node.host, node.port, use_tuple);
        if (rec || results.empty()) throw std::runtime_error("cannot resolve " + node.host);
        node.endpoint = results.begin()->endpoint();
    }

    // Phase 1: sessions.
    co_await create_sessions(run);
    if (run.create_failures > 0) {
        std::cerr << "chatd_load: " << run.create_failures
                  << " sessions could not be created; first error: " << run.first_create_error
                  << "\n";
        co_return;
    }

    // Phase 1b (--idle-streams M): what an idle subscriber costs, before the
    // load has grown chatd's heap.
    if (run.opt.idle_streams > 0) co_await measure_idle_streams(run);

    // Phase 2: one connection per session (two with --read-elsewhere), all
    // open before any generation.
    run.connect_start = now_us();
    {
        Latch connected(ex, run.streams.size());
        for (auto& s : run.streams) {
            auto c = connect_one(run, s, connected);
            net::co_spawn(ex, std::move(c), net::detached);
        }
        co_await connected.wait();
    }
    run.connect_end = now_us();

    // Phase 3: every generation at once.
    Latch sent(ex, run.opt.sessions);
    Latch headers(ex, run.opt.sessions);
    Latch done(ex, run.streams.size());
    net::steady_timer deadline(ex);
    deadline.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(run.opt.timeout_s)));
    deadline.async_wait([&run](boost::system::error_code ec) {
        if (ec) return;
        run.timed_out = true;
        for (auto& s : run.streams) {
            boost::system::error_code ignored;
            if (s.socket) s.socket->close(ignored);
            if (s.sender) s.sender->socket().close(ignored);
        }
    });

    for (auto& node : run.nodes) run.live_rss_before_kb += status_kb(node.pid, "VmRSS");
    for (auto& node : run.nodes) node.go = sample_proc(node.pid);
    if (run.opt.db_pid) run.db_go = sample_process_tree(run.opt.db_pid);
    run.self_go = sample_proc(static_cast<int>(getpid()));
    run.go_at = now_us();
    if (run.opt.resumes > 0) net::co_spawn(ex, run_resumes(run), net::detached);
    // --ramp-s: slot i starts at i/N of the ramp, so that the answers (and
    // with --waves their successors) are spread in time, as users' are.
    net::steady_timer ramp(ex);
    const auto ramp_start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < run.opt.sessions; ++i) {
        if (run.opt.ramp_s > 0 && i > 0) {
            ramp.expires_at(ramp_start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                             std::chrono::duration<double>(
                                                 run.opt.ramp_s * static_cast<double>(i) /
                                                 static_cast<double>(run.opt.sessions))));
            co_await ramp.async_wait(use_tuple);
        }
        start_stream(run, i, sent, headers, done);
    }
    co_await sent.wait();
    run.all_sent_at = now_us();
    run.measure_from = run.all_sent_at + static_cast<std::int64_t>(run.opt.warmup_s * 1e6);

    // A /proc sample where the measured window starts.
    net::steady_timer window_timer(ex);
    window_timer.expires_after(std::chrono::microseconds(run.measure_from - now_us()));
    window_timer.async_wait([&run](boost::system::error_code ec) {
        if (ec) return;
        for (auto& node : run.nodes) node.window = sample_proc(node.pid);
    });

    // Halfway through the first answers (of the last slot to start), every
    // slot has an answer live: chatd's RSS then, over the streams live.
    net::steady_timer mid_timer(ex);
    mid_timer.expires_at(ramp_start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                          std::chrono::duration<double>(
                                              run.opt.ramp_s + 0.5 * static_cast<double>(run.opt.tokens) /
                                                                   run.opt.rate)));
    mid_timer.async_wait([&run](boost::system::error_code ec) {
        if (ec) return;
        for (auto& node : run.nodes) run.live_rss_mid_kb += status_kb(node.pid, "VmRSS");
        for (const auto& s : run.streams)
            if (s.error.empty() && !s.message_id.empty() && s.terminal.empty()) {
                ++run.live_streams_mid;
                run.live_text_bytes_mid += s.text.size();
            }
    });

    co_await headers.wait();
    run.all_headers_at = now_us();
    co_await done.wait();
    run.all_done_at = now_us();
    for (auto& node : run.nodes) node.end = sample_proc(node.pid);
    if (run.opt.db_pid) run.db_end = sample_process_tree(run.opt.db_pid);
    run.self_end = sample_proc(static_cast<int>(getpid()));
    for (auto& node : run.nodes) {
        node.hwm_kb = status_kb(node.pid, "VmHWM");
        node.rss_end_kb = status_kb(node.pid, "VmRSS");
    }
    deadline.cancel();
    window_timer.cancel();
    mid_timer.cancel();

    // Phase 4: the stored text equals the streamed text.
    if (run.opt.verify_content && !run.timed_out) co_await verify_contents(run);
}

// ---------------------------------------------------------------- report

double percentile(const std::vector<std::int64_t>& sorted, double p) {
    if (sorted.empty()) return std::nan("");
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return static_cast<double>(sorted[rank - 1]);
}

struct Report {
    std::vector<std::pair<std::string, json::value>> fields;
    void add(std::string key, json::value v) { fields.emplace_back(std::move(key), std::move(v)); }
    const json::value& get(std::string_view key) const {
        static const json::value missing;
        for (const auto& [k, v] : fields)
            if (k == key) return v;
        return missing;
    }
    // Plain decimals (json::serialize writes 5E1), null for NaN.
    static std::string number(double v) {
        if (!std::isfinite(v)) return "null";
        char buf[64];
        if (v == std::trunc(v) && std::fabs(v) < 1e15)
            std::snprintf(buf, sizeof buf, "%.0f", v);
        else
            std::snprintf(buf, sizeof buf, "%.10g", v);
        return buf;
    }
    static std::string value_text(const json::value& v) {
        if (v.is_double()) return number(v.as_double());
        if (v.is_object()) {
            std::string out = "{";
            for (const auto& [k, e] : v.as_object())
                out += (out.size() > 1 ? ", " : "") + json::serialize(json::value(k)) + ": " +
                       value_text(e);
            return out + "}";
        }
        if (!v.is_array()) return json::serialize(v);
        std::string out = "[";
        for (const auto& e : v.as_array()) out += (out.size() > 1 ? "," : "") + value_text(e);
        return out + "]";
    }
    // One key per line, so that shell tools can read it.
    std::string to_json() const {
        std::string out = "{\n";
        for (std::size_t i = 0; i < fields.size(); ++i) {
            const auto& v = fields[i].second;
            out += "  " + json::serialize(json::value(fields[i].first)) + ": " +
                   value_text(v);
            out += i + 1 < fields.size() ? ",\n" : "\n";
        }
        return out + "}\n";
    }
};

double round_to(double v, int digits) {
    if (!std::isfinite(v)) return v;
    double f = std::pow(10.0, digits);
    return std::round(v * f) / f;
}

Report make_report(Run& run) {
    Report r;
    const auto& o = run.opt;
    std::size_t completed = 0;
    std::size_t failed = 0;
    std::string first_error;
    std::size_t deltas = 0;
    std::int64_t min_first_stamp = std::numeric_limits<std::int64_t>::max(), max_first_stamp = 0;
    for (const auto& s : run.streams) {
        deltas += s.deltas;
        if (s.tokens > 0) {
            min_first_stamp = std::min(min_first_stamp, s.first_stamp);
            max_first_stamp = std::max(max_first_stamp, s.first_stamp);
        }
        if (s.error.empty()) ++completed;
        else {
            ++failed;
            if (first_error.empty())
                first_error = "session " + std::to_string(s.index) + " (" + s.message_id + "): " + s.error;
        }
    }
    std::sort(run.latencies.begin(), run.latencies.end());
    double window_s = static_cast<double>(run.last_arrival - run.measure_from) / 1e6;
    double gen_s = static_cast<double>(run.all_done_at - run.go_at) / 1e6;
    double self_cpu = run.self_end.cpu_s - run.self_go.cpu_s;
    double tokens = static_cast<double>(run.tokens_total);
    // chatd's figures are the sums over its nodes; each node's is in `nodes`.
    double chatd_cpu = 0;
    double store_cpu = 0;  // of chatd's store threads (SQLite)
    double window_cores = 0;  // NaN when a node has no window sample
    std::uint64_t write_bytes = 0, wchar = 0, hwm_kb = 0, rss_end_kb = 0;
    bool proc_ok = true;
    json::array nodes;
    for (const auto& n : run.nodes) {
        // A node that exited before the end (killed, crashed) has no figures.
        const bool ok = n.go.ok && n.end.ok;
        const double cpu = ok ? n.end.cpu_s - n.go.cpu_s : std::nan("");
        const auto node_write_bytes = ok ? n.end.write_bytes - n.go.write_bytes : 0;
        chatd_cpu += cpu;
        store_cpu += ok ? n.end.store_cpu_s - n.go.store_cpu_s : std::nan("");
        write_bytes += node_write_bytes;
        wchar += ok ? n.end.wchar - n.go.wchar : 0;
        hwm_kb += n.hwm_kb;
        rss_end_kb += n.rss_end_kb;
        proc_ok = proc_ok && ok;
        window_cores += n.window.ok && ok
                            ? (n.end.cpu_s - n.window.cpu_s) /
                                  (static_cast<double>(n.end.at_us - n.window.at_us) / 1e6)
                            : std::nan("");
        json::object node;
        node["url"] = n.url;
        node["pid"] = n.pid;
        node["proc_ok"] = ok;
        node["cpu_s"] = round_to(cpu, 3);
        node["cpu_us_per_token"] = round_to(tokens > 0 ? cpu * 1e6 / tokens : 0.0, 2);
        node["cores_avg"] = round_to(gen_s > 0 ? cpu / gen_s : 0.0, 3);
        node["rss_hwm_kb"] = n.hwm_kb;
        node["store_write_bytes"] = ok ? json::value(node_write_bytes) : json::value(nullptr);
        nodes.push_back(std::move(node));
    }
    // chatd's writes to sockets are what this client read from them (the
    // stream connections, and with --read-elsewhere the sends' answers, are
    // the only ones open in this phase).
    std::int64_t file_wchar = static_cast<std::int64_t>(wchar) - static_cast<std::int64_t>(run.socket_bytes);

    if (!o.label.empty()) r.add("label", json::value(o.label));
    r.add("sessions", o.sessions);
    r.add("waves", o.waves);
    r.add("ramp_s", o.ramp_s);
    r.add("tokens_per_answer", o.tokens);
    r.add("rate_per_stream", o.rate);
    r.add("offered_tokens_per_s", o.rate * static_cast<double>(o.sessions));
    r.add("warmup_s", o.warmup_s);
    r.add("chatd_nodes", run.nodes.size());
    r.add("read_elsewhere", o.read_elsewhere);
    r.add("streams_completed", completed);
    r.add("streams_failed", failed);
    r.add("first_error", json::value(first_error));
    r.add("timed_out", run.timed_out);
    r.add("content_verified", o.verify_content && !run.timed_out);
    r.add("content_mismatches", run.verify_failures);
    r.add("create_sessions_s", round_to(static_cast<double>(run.create_end - run.create_start) / 1e6, 3));
    r.add("connect_s", round_to(static_cast<double>(run.connect_end - run.connect_start) / 1e6, 3));
    r.add("start_send_ms", round_to(static_cast<double>(run.all_sent_at - run.go_at) / 1e3, 1));
    if (o.read_elsewhere) {
        // The plain sends' exchanges, each before its stream request.
        std::vector<std::int64_t> posts;
        for (const auto& s : run.streams)
            if (s.post_us >= 0) posts.push_back(s.post_us);
        std::sort(posts.begin(), posts.end());
        r.add("send_p50_ms", round_to(percentile(posts, 50) / 1e3, 2));
        r.add("send_max_ms",
              round_to(posts.empty() ? std::nan("") : static_cast<double>(posts.back()) / 1e3, 2));
    }
    r.add("start_all_headers_ms", round_to(static_cast<double>(run.all_headers_at - run.go_at) / 1e3, 1));
    {
        // When each answer's first token was scheduled, from the start of its
        // send: how long a burst of sends waits for its generations.
        std::vector<std::int64_t> waits;
        for (const auto& s : run.streams)
            if (s.tokens > 0) waits.push_back(s.first_stamp - s.send_started_at);
        std::sort(waits.begin(), waits.end());
        r.add("first_token_after_send_p50_ms", round_to(percentile(waits, 50) / 1e3, 1));
        r.add("first_token_after_send_max_ms",
              round_to(waits.empty() ? std::nan("") : static_cast<double>(waits.back()) / 1e3, 1));
    }
    r.add("first_token_spread_ms",
          round_to(max_first_stamp >= min_first_stamp
                       ? static_cast<double>(max_first_stamp - min_first_stamp) / 1e3
                       : 0.0,
                   1));
    r.add("gen_duration_s", round_to(gen_s, 3));
    r.add("tokens_total", run.tokens_total);
    r.add("tokens_measured", run.latencies.size());
    r.add("deltas_total", deltas);
    r.add("tokens_per_delta", round_to(deltas ? tokens / static_cast<double>(deltas) : 0.0, 2));
    r.add("window_s", round_to(window_s, 3));
    r.add("delivered_tokens_per_s",
          round_to(window_s > 0 ? static_cast<double>(run.tokens_arrived_in_window) / window_s : 0.0, 0));
    r.add("delivered_tokens_per_s_overall", round_to(gen_s > 0 ? tokens / gen_s : 0.0, 0));
    r.add("latency_p50_ms", round_to(percentile(run.latencies, 50) / 1e3, 3));
    r.add("latency_p90_ms", round_to(percentile(run.latencies, 90) / 1e3, 3));
    r.add("latency_p99_ms", round_to(percentile(run.latencies, 99) / 1e3, 3));
    r.add("latency_p999_ms", round_to(percentile(run.latencies, 99.9) / 1e3, 3));
    r.add("latency_max_ms", round_to(run.latencies.empty() ? std::nan("") : static_cast<double>(run.latencies.back()) / 1e3, 3));
    {
        // Steadiness: the time between a stream's consecutive tokens (1/R
        // expected; 0 for tokens that came together).
        auto& gaps = run.gaps;
        std::sort(gaps.begin(), gaps.end());
        r.add("gap_p50_ms", round_to(percentile(gaps, 50) / 1e3, 3));
        r.add("gap_p99_ms", round_to(percentile(gaps, 99) / 1e3, 3));
        r.add("gap_max_ms", round_to(gaps.empty() ? std::nan("") : static_cast<double>(gaps.back()) / 1e3, 3));
        // Time to first token: from the start of the send to the arrival of
        // the answer's first token, whatever the warm-up.
        std::vector<std::int64_t> ttft;
        for (const auto& st : run.streams)
            if (st.tokens > 0) ttft.push_back(st.first_arrival - st.send_started_at);
        std::sort(ttft.begin(), ttft.end());
        r.add("ttft_p50_ms", round_to(percentile(ttft, 50) / 1e3, 3));
        r.add("ttft_p99_ms", round_to(percentile(ttft, 99) / 1e3, 3));
        r.add("ttft_max_ms", round_to(ttft.empty() ? std::nan("") : static_cast<double>(ttft.back()) / 1e3, 3));
    }
    r.add("stamp_regressions", run.stamp_regressions);
    {
        // Per second of scheduled emission time since the start: tokens, p50, p99.
        std::vector<std::vector<std::int64_t>> buckets;
        for (const auto& [stamp, latency] : run.all_tokens) {
            auto b = std::max<std::int64_t>(0, (stamp - run.go_at) / 1000000);
            if (static_cast<std::size_t>(b) >= buckets.size()) buckets.resize(static_cast<std::size_t>(b) + 1);
            buckets[static_cast<std::size_t>(b)].push_back(latency);
        }
        json::array count, p50, p99;
        for (auto& b : buckets) {
            std::sort(b.begin(), b.end());
            count.push_back(b.size());
            p50.push_back(round_to(percentile(b, 50) / 1e3, 2));
            p99.push_back(round_to(percentile(b, 99) / 1e3, 2));
        }
        r.add("timeline_tokens", std::move(count));
        r.add("timeline_p50_ms", std::move(p50));
        r.add("timeline_p99_ms", std::move(p99));
    }
    r.add("chatd_pid", run.nodes.front().pid);
    r.add("chatd_proc_ok", proc_ok);
    r.add("chatd_cpu_s", round_to(chatd_cpu, 3));
    r.add("chatd_cpu_us_per_token", round_to(tokens > 0 ? chatd_cpu * 1e6 / tokens : 0.0, 2));
    r.add("chatd_cores_avg", round_to(gen_s > 0 ? chatd_cpu / gen_s : 0.0, 3));
    // The split: the store's threads (SQLite's writer and reader) and the rest
    // (the I/O thread, which runs everything else).
    r.add("chatd_store_cpu_us_per_token", round_to(tokens > 0 ? store_cpu * 1e6 / tokens : 0.0, 2));
    r.add("chatd_io_cpu_us_per_token",
          round_to(tokens > 0 ? (chatd_cpu - store_cpu) * 1e6 / tokens : 0.0, 2));
    r.add("chatd_cores_in_window", round_to(window_cores, 3));
    r.add("chatd_peak_rss_kb", hwm_kb);
    r.add("chatd_rss_end_kb", rss_end_kb);
    if (run.opt.resumes > 0) {
        r.add("resumes_per_kind", run.opt.resumes);
        r.add("resume_failures", run.resume_failures);
        r.add("resume_skipped", run.resume_skipped);
        r.add("resume_error", json::value(run.resume_error));
        for (auto [name, times] : {std::pair{"live", &run.resume_live_us},
                                   std::pair{"ended", &run.resume_ended_us}}) {
            std::sort(times->begin(), times->end());
            const std::string k = std::string("resume_") + name;
            r.add(k + "_count", times->size());
            r.add(k + "_p50_ms", round_to(percentile(*times, 50) / 1e3, 3));
            r.add(k + "_p99_ms", round_to(percentile(*times, 99) / 1e3, 3));
            r.add(k + "_max_ms",
                  round_to(times->empty() ? std::nan("") : static_cast<double>(times->back()) / 1e3, 3));
        }
    }
    if (run.opt.idle_streams > 0) {
        r.add("idle_streams", run.opt.idle_streams);
        r.add("idle_streams_opened", run.idle_opened);
        r.add("idle_error", json::value(run.idle_error));
        r.add("idle_rss_before_kb", run.idle_rss_before_kb);
        r.add("idle_rss_after_kb", run.idle_rss_after_kb);
        r.add("idle_bytes_per_stream",
              round_to(run.idle_opened > 0 ? (static_cast<double>(run.idle_rss_after_kb) -
                                              static_cast<double>(run.idle_rss_before_kb)) *
                                                 1024.0 / static_cast<double>(run.idle_opened)
                                           : std::nan(""),
                       0));
    }
    if (run.live_streams_mid > 0) {
        const auto live = static_cast<double>(run.live_streams_mid);
        r.add("live_streams_mid", run.live_streams_mid);
        r.add("live_rss_before_kb", run.live_rss_before_kb);
        r.add("live_rss_mid_kb", run.live_rss_mid_kb);
        r.add("live_bytes_per_stream",
              round_to((static_cast<double>(run.live_rss_mid_kb) -
                        static_cast<double>(run.live_rss_before_kb)) *
                           1024.0 / live,
                       0));
        r.add("live_text_bytes_per_stream",
              round_to(static_cast<double>(run.live_text_bytes_mid) / live, 0));
    }
    r.add("nodes", std::move(nodes));
    r.add("store_write_bytes", write_bytes);
    r.add("store_write_bytes_per_token", round_to(tokens > 0 ? static_cast<double>(write_bytes) / tokens : 0.0, 1));
    r.add("file_write_syscall_bytes", file_wchar);
    r.add("file_write_syscall_bytes_per_token",
          round_to(tokens > 0 ? static_cast<double>(file_wchar) / tokens : 0.0, 1));
    r.add("client_socket_bytes", run.socket_bytes);
    if (o.db_pid) {
        const bool ok = run.db_go.ok && run.db_end.ok;
        const double db_cpu = run.db_end.cpu_s - run.db_go.cpu_s;
        const auto db_bytes = run.db_end.write_bytes - run.db_go.write_bytes;
        r.add("db_pid", o.db_pid);
        r.add("db_proc_ok", ok);
        r.add("db_cpu_s", round_to(db_cpu, 3));
        r.add("db_cpu_us_per_token", round_to(tokens > 0 ? db_cpu * 1e6 / tokens : 0.0, 2));
        r.add("db_cores_avg", round_to(gen_s > 0 ? db_cpu / gen_s : 0.0, 3));
        const auto db_wchar = run.db_end.wchar - run.db_go.wchar;
        r.add("db_write_bytes", db_bytes);
        r.add("db_write_bytes_per_token",
              round_to(tokens > 0 ? static_cast<double>(db_bytes) / tokens : 0.0, 1));
        // PostgreSQL sends on its sockets with send(), which wchar does not
        // count: this is the bytes it handed to write() on files (WAL, data
        // files, its log).
        r.add("db_file_write_syscall_bytes", db_wchar);
        r.add("db_file_write_syscall_bytes_per_token",
              round_to(tokens > 0 ? static_cast<double>(db_wchar) / tokens : 0.0, 1));
    }
    r.add("generator_cpu_s", round_to(self_cpu, 3));
    r.add("generator_cpu_us_per_token", round_to(tokens > 0 ? self_cpu * 1e6 / tokens : 0.0, 2));
    r.add("generator_cores_avg", round_to(gen_s > 0 ? self_cpu / gen_s : 0.0, 3));
    return r;
}

std::string format_num(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

double as_double(const json::value& v) {
    if (v.is_double()) return v.as_double();
    if (v.is_int64()) return static_cast<double>(v.as_int64());
    if (v.is_uint64()) return static_cast<double>(v.as_uint64());
    return std::nan("");
}

double num(const Report& r, std::string_view key) {
    auto v = r.get(key);
    if (v.is_double()) return v.as_double();
    if (v.is_int64()) return static_cast<double>(v.as_int64());
    if (v.is_uint64()) return static_cast<double>(v.as_uint64());
    return std::nan("");
}

void print_table(const Report& r, bool timeline) {
    auto row = [](std::string_view name, const std::string& value) {
        std::printf("  %-34.*s %s\n", static_cast<int>(name.size()), name.data(), value.c_str());
    };
    std::printf("chatd_load: %.0f sessions x %.0f tokens at %.0f tokens/s each (offered %.0f tokens/s)\n",
                num(r, "sessions"), num(r, "tokens_per_answer"), num(r, "rate_per_stream"),
                num(r, "offered_tokens_per_s"));
    const auto& nodes = r.get("nodes").as_array();
    if (nodes.size() > 1 || r.get("read_elsewhere").as_bool())
        row("nodes", format_num("%.0f", static_cast<double>(nodes.size())) +
                         (r.get("read_elsewhere").as_bool()
                              ? ", sent as JSON on node i, read on node i+1 (mod nodes)"
                              : ", everything of stream i on node i (mod nodes)"));
    row("streams completed / failed", format_num("%.0f", num(r, "streams_completed")) + " / " +
                                          format_num("%.0f", num(r, "streams_failed")) +
                                          (r.get("timed_out").as_bool() ? " (TIMED OUT)" : ""));
    if (auto e = r.get("first_error"); e.is_string() && !e.as_string().empty())
        row("first error", std::string(e.as_string()));
    row("content verified (mismatches)", std::string(r.get("content_verified").as_bool() ? "yes" : "no") +
                                             " (" + format_num("%.0f", num(r, "content_mismatches")) + ")");
    row("setup: create sessions / connect", format_num("%.2f s", num(r, "create_sessions_s")) + " / " +
                                                format_num("%.2f s", num(r, "connect_s")));
    row("start: sent / all headers / spread", format_num("%.1f ms", num(r, "start_send_ms")) + " / " +
                                                  format_num("%.1f ms", num(r, "start_all_headers_ms")) + " / " +
                                                  format_num("%.1f ms", num(r, "first_token_spread_ms")));
    row("first token after send p50 / max",
        format_num("%.1f ms", num(r, "first_token_after_send_p50_ms")) + " / " +
            format_num("%.1f ms", num(r, "first_token_after_send_max_ms")));
    if (r.get("read_elsewhere").as_bool())
        row("JSON send p50 / max", format_num("%.2f ms", num(r, "send_p50_ms")) + " / " +
                                       format_num("%.2f ms", num(r, "send_max_ms")));
    row("generation phase", format_num("%.2f s", num(r, "gen_duration_s")));
    row("tokens total / measured", format_num("%.0f", num(r, "tokens_total")) + " / " +
                                       format_num("%.0f", num(r, "tokens_measured")) +
                                       format_num(" (after %.1f s warm-up)", num(r, "warmup_s")));
    row("tokens per delta event", format_num("%.2f", num(r, "tokens_per_delta")));
    row("delivered tokens/s (window/all)", format_num("%.0f", num(r, "delivered_tokens_per_s")) + " / " +
                                               format_num("%.0f", num(r, "delivered_tokens_per_s_overall")));
    row("latency p50 / p90 / p99", format_num("%.2f ms", num(r, "latency_p50_ms")) + " / " +
                                       format_num("%.2f ms", num(r, "latency_p90_ms")) + " / " +
                                       format_num("%.2f ms", num(r, "latency_p99_ms")));
    row("latency p99.9 / max", format_num("%.2f ms", num(r, "latency_p999_ms")) + " / " +
                                   format_num("%.2f ms", num(r, "latency_max_ms")));
    row("token gap p50 / p99 / max", format_num("%.2f ms", num(r, "gap_p50_ms")) + " / " +
                                         format_num("%.2f ms", num(r, "gap_p99_ms")) + " / " +
                                         format_num("%.2f ms", num(r, "gap_max_ms")));
    row("first token after send p50 / p99", format_num("%.2f ms", num(r, "ttft_p50_ms")) + " / " +
                                                format_num("%.2f ms", num(r, "ttft_p99_ms")));
    const bool several = nodes.size() > 1;
    row(several ? "chatd CPU (all nodes)" : "chatd CPU",
        format_num("%.2f s", num(r, "chatd_cpu_s")) +
            format_num(", %.2f µs/token", num(r, "chatd_cpu_us_per_token")) +
            format_num(", %.2f cores avg", num(r, "chatd_cores_avg")) +
            format_num(" (%.2f in window)", num(r, "chatd_cores_in_window")));
    row("  of which store threads / rest", format_num("%.2f", num(r, "chatd_store_cpu_us_per_token")) + " / " +
                                               format_num("%.2f µs/token", num(r, "chatd_io_cpu_us_per_token")));
    if (num(r, "resumes_per_kind") > 0)
        for (const char* kind : {"live", "ended"}) {
            const std::string k = std::string("resume_") + kind;
            row(std::string("resume (Last-Event-ID), ") + kind + " p50 / p99 / max",
                format_num("%.0f: ", num(r, k + "_count")) +
                    format_num("%.2f ms / ", num(r, k + "_p50_ms")) +
                    format_num("%.2f ms / ", num(r, k + "_p99_ms")) +
                    format_num("%.2f ms", num(r, k + "_max_ms")));
        }
    if (num(r, "idle_streams") > 0)
        row("idle session streams",
            format_num("%.0f open, ", num(r, "idle_streams_opened")) +
                format_num("RSS %.1f", num(r, "idle_rss_before_kb") / 1024.0) +
                format_num(" -> %.1f MiB, ", num(r, "idle_rss_after_kb") / 1024.0) +
                format_num("%.0f B per stream", num(r, "idle_bytes_per_stream")));
    if (num(r, "live_streams_mid") > 0)
        row("live streams (middle of the first answers)",
            format_num("%.0f live, ", num(r, "live_streams_mid")) +
                format_num("RSS %.1f", num(r, "live_rss_before_kb") / 1024.0) +
                format_num(" -> %.1f MiB, ", num(r, "live_rss_mid_kb") / 1024.0) +
                format_num("%.0f B per stream", num(r, "live_bytes_per_stream")) +
                format_num(" (its text so far %.0f B)", num(r, "live_text_bytes_per_stream")));
    row(several ? "chatd peak RSS (VmHWM, all nodes)" : "chatd peak RSS (VmHWM)",
        format_num("%.1f MiB", num(r, "chatd_peak_rss_kb") / 1024.0));
    for (std::size_t k = 0; several && k < nodes.size(); ++k) {
        const auto& n = nodes[k].as_object();
        row("  node " + std::to_string(k) + " " + std::string(n.at("url").as_string()),
            format_num("%.2f s", as_double(n.at("cpu_s"))) +
                format_num(", %.2f µs/token", as_double(n.at("cpu_us_per_token"))) +
                format_num(", %.2f cores avg", as_double(n.at("cores_avg"))) +
                format_num(", %.1f MiB peak", as_double(n.at("rss_hwm_kb")) / 1024.0));
    }
    row("store write_bytes (/proc io)", format_num("%.0f B", num(r, "store_write_bytes")) +
                                            format_num(", %.1f B/token", num(r, "store_write_bytes_per_token")));
    row("file write() bytes (wchar-socket)", format_num("%.0f B", num(r, "file_write_syscall_bytes")) +
                                                 format_num(", %.1f B/token", num(r, "file_write_syscall_bytes_per_token")));
    row("generator CPU", format_num("%.2f s", num(r, "generator_cpu_s")) +
                             format_num(", %.2f µs/token", num(r, "generator_cpu_us_per_token")) +
                             format_num(", %.2f cores avg", num(r, "generator_cores_avg")));
    if (r.get("db_pid").is_number()) {
        row("database server CPU", format_num("%.2f s", num(r, "db_cpu_s")) +
                                       format_num(", %.2f µs/token", num(r, "db_cpu_us_per_token")) +
                                       format_num(", %.2f cores avg", num(r, "db_cores_avg")));
        row("database server write_bytes", format_num("%.0f B", num(r, "db_write_bytes")) +
                                               format_num(", %.1f B/token", num(r, "db_write_bytes_per_token")));
        row("database server file write() bytes",
            format_num("%.0f B", num(r, "db_file_write_syscall_bytes")) +
                format_num(", %.1f B/token", num(r, "db_file_write_syscall_bytes_per_token")));
        if (!r.get("db_proc_ok").as_bool())
            std::printf("  WARNING: could not read /proc/%.0f: database figures are missing\n", num(r, "db_pid"));
    }
    if (timeline) {
        const auto& count = r.get("timeline_tokens").as_array();
        const auto& p50 = r.get("timeline_p50_ms").as_array();
        const auto& p99 = r.get("timeline_p99_ms").as_array();
        std::printf("  timeline (by scheduled second): second tokens p50_ms p99_ms\n");
        for (std::size_t i = 0; i < count.size(); ++i)
            std::printf("    %3zu %8.0f %9.2f %9.2f\n", i, as_double(count[i]), as_double(p50[i]),
                        as_double(p99[i]));
    }
    for (const auto& n : nodes)
        if (!n.as_object().at("proc_ok").as_bool())
            std::printf("  WARNING: could not read /proc/%.0f: chatd figures are missing\n",
                        as_double(n.as_object().at("pid")));
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    CLI::App app{"chatd_load: N streams of L stamped tokens at R tokens/s, one SSE reader each"};
    app.add_option("--url", opt.urls,
                   "chatd's base URL, http://HOST:PORT; once per node of one database")
        ->required()
        ->take_all();
    app.add_option("--sessions", opt.sessions, "N: sessions, one generation and one stream each")
        ->check(CLI::PositiveNumber);
    app.add_option("--tokens", opt.tokens, "L: tokens per answer (chatd's --sim-min/max-tokens)")
        ->check(CLI::PositiveNumber);
    app.add_option("--rate", opt.rate, "R: tokens/s per stream (chatd's --sim-tokens-per-second)")
        ->check(CLI::PositiveNumber);
    app.add_option("--chatd-pid", opt.chatd_pids,
                   "chatd's pid, for /proc figures; once per --url, in order")
        ->required()
        ->take_all();
    app.add_option("--waves", opt.waves,
                   "W: answers per stream slot, one after the other: N answers run at a time, "
                   "N*W in all (each its own session and connection)")
        ->check(CLI::PositiveNumber);
    app.add_option("--ramp-s", opt.ramp_s,
                   "spread the first N starts evenly over this many seconds (0: all at once)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--resumes", opt.resumes,
                   "K: during the load, K Last-Event-ID reconnects to answers still generating and "
                   "K to answers that have ended (with --waves), timed to the first missed byte");
    app.add_option("--idle-streams", opt.idle_streams,
                   "before the load, hold this many idle session streams open at once on the "
                   "first node and report chatd's RSS per stream")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--idle-batch", opt.idle_batch,
                   "open the idle streams this many at a time, each batch once the last is open, "
                   "as clients arrive (default: all at once, the worst case for memory)")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--read-elsewhere", opt.read_elsewhere,
                 "send each message as plain JSON on node i and read its answer with GET "
                 "/messages/{id}/stream on node i+1 (mod the number of nodes)");
    app.add_option("--db-pid", opt.db_pid,
                   "the database server's main process (PostgreSQL's postmaster): its CPU and "
                   "writes, with its children's, are reported apart from chatd's");
    app.add_option("--warmup-s", opt.warmup_s, "tokens stamped earlier than this after the start are not measured")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--timeout-s", opt.timeout_s, "give up on streams still open after this")
        ->check(CLI::PositiveNumber);
    app.add_option("--http-concurrency", opt.http_concurrency,
                   "connections per node used to create sessions and verify contents")
        ->check(CLI::PositiveNumber);
    bool no_verify = false;
    app.add_flag("--no-verify-content", no_verify,
                 "skip comparing the streamed text with the content endpoint");
    app.add_flag("--timeline", opt.timeline, "also print tokens and latency per second");
    app.add_option("--json", opt.json_path, "also write the results as JSON to this file");
    app.add_option("--label", opt.label, "a label copied into the JSON");
    CLI11_PARSE(app, argc, argv);
    opt.verify_content = !no_verify;
    if (opt.urls.size() != opt.chatd_pids.size()) {
        std::cerr << "chatd_load: give one --chatd-pid per --url\n";
        return 2;
    }

    net::io_context io{1};
    Run run(opt, io);
    for (std::size_t k = 0; k < opt.urls.size(); ++k) {
        Node node;
        node.url = opt.urls[k];
        node.pid = opt.chatd_pids[k];
        if (!split_url(node)) {
            std::cerr << "chatd_load: --url must look like http://127.0.0.1:8080\n";
            return 2;
        }
        run.nodes.push_back(std::move(node));
    }
    run.streams.resize(opt.sessions * opt.waves);
    for (std::size_t i = 0; i < run.streams.size(); ++i) run.streams[i].index = i;
    run.latencies.reserve(run.streams.size() * opt.tokens);
    run.all_tokens.reserve(run.streams.size() * opt.tokens);

    std::exception_ptr failure;
    auto main_task = run_load(run);
    net::co_spawn(io, std::move(main_task), [&failure](std::exception_ptr e) { failure = e; });
    io.run();
    if (failure) {
        try {
            std::rethrow_exception(failure);
        } catch (const std::exception& e) {
            std::cerr << "chatd_load: " << e.what() << "\n";
        }
        return 2;
    }
    if (run.create_failures > 0) return 1;

    auto report = make_report(run);
    print_table(report, opt.timeline);
    if (!opt.json_path.empty()) {
        std::ofstream out(opt.json_path);
        out << report.to_json();
        if (!out) {
            std::cerr << "chatd_load: cannot write " << opt.json_path << "\n";
            return 2;
        }
    }
    bool ok =
        num(report, "streams_failed") == 0 && !run.timed_out && run.verify_failures == 0 &&
        run.idle_opened == opt.idle_streams && run.resume_failures == 0 &&
        std::all_of(run.nodes.begin(), run.nodes.end(), [](const Node& n) { return n.go.ok; });
    return ok ? 0 : 1;
}
