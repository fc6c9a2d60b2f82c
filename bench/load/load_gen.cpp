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
// chatd's own cost comes from /proc/<pid>: CPU (utime+stime of stat), peak RSS
// (VmHWM of status) and store writes (write_bytes of io, and wchar minus the
// bytes this client read from chatd's sockets, i.e. bytes chatd handed to
// write()/pwrite() on files). The generator reports its own CPU time too: it
// shares the machine's cores with chatd.
//
// It checks every stream: HTTP 200, delta offsets contiguous, every event id
// equal to `<message>.<end offset>`, the text made only of whole stamped
// tokens, exactly --tokens of them, a terminal `completed` status, and (unless
// --no-verify-content) the received text byte for byte equal to what the
// content endpoint answers afterwards. Exit code 0 only when all of that holds.
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
    std::string url;
    std::string host;
    std::string port;
    std::size_t sessions = 100;
    std::size_t tokens = 500;
    double rate = 50;
    int chatd_pid = 0;
    int db_pid = 0;  // the database server's main process, when it has one
    double warmup_s = 2;
    double timeout_s = 170;
    std::size_t http_concurrency = 16;
    bool verify_content = true;
    bool timeline = false;
    std::string json_path;
    std::string label;
};

bool split_url(Options& o) {
    std::string_view u = o.url;
    constexpr std::string_view scheme = "http://";
    if (u.substr(0, scheme.size()) != scheme) return false;
    u.remove_prefix(scheme.size());
    if (auto slash = u.find('/'); slash != std::string_view::npos) u = u.substr(0, slash);
    auto colon = u.rfind(':');
    if (colon == std::string_view::npos) {
        o.host = std::string(u);
        o.port = "80";
    } else {
        o.host = std::string(u.substr(0, colon));
        o.port = std::string(u.substr(colon + 1));
    }
    return !o.host.empty() && !o.port.empty();
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
    std::unique_ptr<tcp::socket> socket;

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
    std::int64_t sent_at = 0;
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
    tcp::endpoint endpoint;
    std::vector<Stream> streams;

    // Measurement.
    std::int64_t measure_from = std::numeric_limits<std::int64_t>::max();
    std::vector<std::int64_t> latencies;  // µs, tokens stamped at/after measure_from
    // Every token, for the per-second timeline: (stamp, latency) in µs.
    std::vector<std::pair<std::int64_t, std::int64_t>> all_tokens;
    std::uint64_t tokens_total = 0;
    std::uint64_t tokens_arrived_in_window = 0;  // arrived at/after measure_from
    std::int64_t first_arrival = 0;
    std::int64_t last_arrival = 0;
    std::uint64_t socket_bytes = 0;  // everything read from the stream sockets
    std::uint64_t stamp_regressions = 0;
    json::parser parser;

    // Phases.
    std::int64_t create_start = 0, create_end = 0;
    std::int64_t connect_start = 0, connect_end = 0;
    std::int64_t go_at = 0, all_sent_at = 0, all_headers_at = 0, all_done_at = 0;
    ProcSample chatd_go, chatd_window, chatd_end;
    ProcSample db_go, db_end;
    ProcSample self_go, self_end;
    std::uint64_t chatd_hwm_kb = 0, chatd_rss_end_kb = 0;
    bool timed_out = false;
    std::size_t create_failures = 0;
    std::string first_create_error;
    std::size_t verify_failures = 0;

    Run(Options o, net::io_context& ctx) : opt(std::move(o)), io(ctx) {}
};

// ---------------------------------------------------------------- HTTP calls

struct HttpResult {
    int status = 0;
    std::string body;
    std::string error;
};

net::awaitable<HttpResult> http_call(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                     Run& run, bhttp::verb verb, std::string target,
                                     std::string body) {
    HttpResult result;
    bhttp::request<bhttp::string_body> req(verb, target, 11);
    req.set(bhttp::field::host, run.opt.host);
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
    (void)rn;
    stream.expires_never();
    if (rec) {
        result.error = "read: " + rec.message();
        co_return result;
    }
    result.status = static_cast<int>(res.result_int());
    result.body = std::move(res.body());
    co_return result;
}

// Runs `job(i)` for every i in [0, count) on http_concurrency keep-alive
// connections.
template <class Job>
net::awaitable<void> on_http_workers(Run& run, std::size_t count, Job job) {
    std::size_t next = 0;
    std::size_t workers = std::max<std::size_t>(1, std::min(run.opt.http_concurrency, count));
    Latch done(run.io.get_executor(), workers);
    for (std::size_t w = 0; w < workers; ++w) {
        auto worker = [&run, &next, &done, count, &job]() -> net::awaitable<void> {
            beast::tcp_stream stream(run.io.get_executor());
            beast::flat_buffer buffer;
            bool connected = false;
            while (next < count) {
                std::size_t i = next++;
                if (!connected) {
                    auto [ec] = co_await stream.socket().async_connect(run.endpoint, use_tuple);
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
        };
        net::co_spawn(run.io, worker, net::detached);
    }
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
        auto r = co_await http_call(stream, buffer, run, bhttp::verb::post, target, body);
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
    co_await on_http_workers(run, run.streams.size(), job);
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
        auto r = co_await http_call(stream, buffer, run, bhttp::verb::get, target, no_body);
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
    co_await on_http_workers(run, run.streams.size(), job);
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
        if (s.tokens == 0) s.first_stamp = stamp;
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

net::awaitable<void> connect_one(Run& run, Stream& s, Latch& done) {
    s.socket = std::make_unique<tcp::socket>(run.io);
    auto [ec] = co_await s.socket->async_connect(run.endpoint, use_tuple);
    if (ec) s.fail("connect: " + ec.message());
    else s.socket->set_option(tcp::no_delay(true));
    done.count_down();
}

net::awaitable<void> stream_one(Run& run, Stream& s, Latch& sent, Latch& headers, Latch& done) {
    std::string body = R"({"content":"benchmark prompt )" + std::to_string(s.index) + R"("})";
    std::string request = "POST " + std::string(kApi) + "/sessions/" + s.session_id +
                          "/messages HTTP/1.1\r\n"
                          "Host: " + run.opt.host + "\r\n"
                          "Accept: text/event-stream\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: " + std::to_string(body.size()) + "\r\n"
                          "\r\n" + body;
    auto out = net::buffer(request);
    auto [wec, wn] = co_await net::async_write(*s.socket, out, use_tuple);
    (void)wn;
    s.sent_at = now_us();
    sent.count_down();
    bool counted_headers = false;
    if (wec) {
        s.fail("send: " + wec.message());
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
    done.count_down();
}

net::awaitable<void> run_load(Run& run) {
    auto ex = run.io.get_executor();
    tcp::resolver resolver(ex);
    auto [rec, results] = co_await resolver.async_resolve(run.opt.host, run.opt.port, use_tuple);
    if (rec || results.empty()) throw std::runtime_error("cannot resolve " + run.opt.host);
    run.endpoint = results.begin()->endpoint();

    // Phase 1: sessions.
    co_await create_sessions(run);
    if (run.create_failures > 0) {
        std::cerr << "chatd_load: " << run.create_failures
                  << " sessions could not be created; first error: " << run.first_create_error
                  << "\n";
        co_return;
    }

    // Phase 2: one connection per session, all open before any generation.
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
    Latch sent(ex, run.streams.size());
    Latch headers(ex, run.streams.size());
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
        }
    });

    run.chatd_go = sample_proc(run.opt.chatd_pid);
    if (run.opt.db_pid) run.db_go = sample_process_tree(run.opt.db_pid);
    run.self_go = sample_proc(static_cast<int>(getpid()));
    run.go_at = now_us();
    for (auto& s : run.streams) {
        if (!s.error.empty()) {  // could not connect
            sent.count_down();
            headers.count_down();
            done.count_down();
            continue;
        }
        auto c = stream_one(run, s, sent, headers, done);
        net::co_spawn(ex, std::move(c), net::detached);
    }
    co_await sent.wait();
    run.all_sent_at = now_us();
    run.measure_from = run.all_sent_at + static_cast<std::int64_t>(run.opt.warmup_s * 1e6);

    // A /proc sample where the measured window starts.
    net::steady_timer window_timer(ex);
    window_timer.expires_after(std::chrono::microseconds(run.measure_from - now_us()));
    window_timer.async_wait([&run](boost::system::error_code ec) {
        if (!ec) run.chatd_window = sample_proc(run.opt.chatd_pid);
    });

    co_await headers.wait();
    run.all_headers_at = now_us();
    co_await done.wait();
    run.all_done_at = now_us();
    run.chatd_end = sample_proc(run.opt.chatd_pid);
    if (run.opt.db_pid) run.db_end = sample_process_tree(run.opt.db_pid);
    run.self_end = sample_proc(static_cast<int>(getpid()));
    run.chatd_hwm_kb = status_kb(run.opt.chatd_pid, "VmHWM");
    run.chatd_rss_end_kb = status_kb(run.opt.chatd_pid, "VmRSS");
    deadline.cancel();
    window_timer.cancel();

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
    double chatd_cpu = run.chatd_end.cpu_s - run.chatd_go.cpu_s;
    double self_cpu = run.self_end.cpu_s - run.self_go.cpu_s;
    double tokens = static_cast<double>(run.tokens_total);
    std::uint64_t write_bytes = run.chatd_end.write_bytes - run.chatd_go.write_bytes;
    std::uint64_t wchar = run.chatd_end.wchar - run.chatd_go.wchar;
    // chatd's writes to sockets are what this client read from them (the
    // stream connections are the only ones open in this phase).
    std::int64_t file_wchar = static_cast<std::int64_t>(wchar) - static_cast<std::int64_t>(run.socket_bytes);
    double window_cpu = run.chatd_window.ok ? run.chatd_end.cpu_s - run.chatd_window.cpu_s : std::nan("");
    double window_cpu_wall = run.chatd_window.ok
                                 ? static_cast<double>(run.chatd_end.at_us - run.chatd_window.at_us) / 1e6
                                 : std::nan("");

    if (!o.label.empty()) r.add("label", json::value(o.label));
    r.add("sessions", o.sessions);
    r.add("tokens_per_answer", o.tokens);
    r.add("rate_per_stream", o.rate);
    r.add("offered_tokens_per_s", o.rate * static_cast<double>(o.sessions));
    r.add("warmup_s", o.warmup_s);
    r.add("streams_completed", completed);
    r.add("streams_failed", failed);
    r.add("first_error", json::value(first_error));
    r.add("timed_out", run.timed_out);
    r.add("content_verified", o.verify_content && !run.timed_out);
    r.add("content_mismatches", run.verify_failures);
    r.add("create_sessions_s", round_to(static_cast<double>(run.create_end - run.create_start) / 1e6, 3));
    r.add("connect_s", round_to(static_cast<double>(run.connect_end - run.connect_start) / 1e6, 3));
    r.add("start_send_ms", round_to(static_cast<double>(run.all_sent_at - run.go_at) / 1e3, 1));
    r.add("start_all_headers_ms", round_to(static_cast<double>(run.all_headers_at - run.go_at) / 1e3, 1));
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
    r.add("chatd_pid", o.chatd_pid);
    r.add("chatd_proc_ok", run.chatd_go.ok && run.chatd_end.ok);
    r.add("chatd_cpu_s", round_to(chatd_cpu, 3));
    r.add("chatd_cpu_us_per_token", round_to(tokens > 0 ? chatd_cpu * 1e6 / tokens : 0.0, 2));
    r.add("chatd_cores_avg", round_to(gen_s > 0 ? chatd_cpu / gen_s : 0.0, 3));
    r.add("chatd_cores_in_window", round_to(window_cpu_wall > 0 ? window_cpu / window_cpu_wall : std::nan(""), 3));
    r.add("chatd_peak_rss_kb", run.chatd_hwm_kb);
    r.add("chatd_rss_end_kb", run.chatd_rss_end_kb);
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
    row("chatd CPU", format_num("%.2f s", num(r, "chatd_cpu_s")) + format_num(", %.2f µs/token", num(r, "chatd_cpu_us_per_token")) +
                         format_num(", %.2f cores avg", num(r, "chatd_cores_avg")) +
                         format_num(" (%.2f in window)", num(r, "chatd_cores_in_window")));
    row("chatd peak RSS (VmHWM)", format_num("%.1f MiB", num(r, "chatd_peak_rss_kb") / 1024.0));
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
    if (!r.get("chatd_proc_ok").as_bool())
        std::printf("  WARNING: could not read /proc/%.0f: chatd figures are missing\n", num(r, "chatd_pid"));
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    CLI::App app{"chatd_load: N streams of L stamped tokens at R tokens/s, one SSE reader each"};
    app.add_option("--url", opt.url, "chatd's base URL, http://HOST:PORT")->required();
    app.add_option("--sessions", opt.sessions, "N: sessions, one generation and one stream each")
        ->check(CLI::PositiveNumber);
    app.add_option("--tokens", opt.tokens, "L: tokens per answer (chatd's --sim-min/max-tokens)")
        ->check(CLI::PositiveNumber);
    app.add_option("--rate", opt.rate, "R: tokens/s per stream (chatd's --sim-tokens-per-second)")
        ->check(CLI::PositiveNumber);
    app.add_option("--chatd-pid", opt.chatd_pid, "chatd's pid, for /proc figures")->required();
    app.add_option("--db-pid", opt.db_pid,
                   "the database server's main process (PostgreSQL's postmaster): its CPU and "
                   "writes, with its children's, are reported apart from chatd's");
    app.add_option("--warmup-s", opt.warmup_s, "tokens stamped earlier than this after the start are not measured")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--timeout-s", opt.timeout_s, "give up on streams still open after this")
        ->check(CLI::PositiveNumber);
    app.add_option("--http-concurrency", opt.http_concurrency,
                   "connections used to create sessions and verify contents")
        ->check(CLI::PositiveNumber);
    bool no_verify = false;
    app.add_flag("--no-verify-content", no_verify,
                 "skip comparing the streamed text with the content endpoint");
    app.add_flag("--timeline", opt.timeline, "also print tokens and latency per second");
    app.add_option("--json", opt.json_path, "also write the results as JSON to this file");
    app.add_option("--label", opt.label, "a label copied into the JSON");
    CLI11_PARSE(app, argc, argv);
    opt.verify_content = !no_verify;
    if (!split_url(opt)) {
        std::cerr << "chatd_load: --url must look like http://127.0.0.1:8080\n";
        return 2;
    }

    net::io_context io{1};
    Run run(opt, io);
    run.streams.resize(opt.sessions);
    for (std::size_t i = 0; i < run.streams.size(); ++i) run.streams[i].index = i;
    run.latencies.reserve(opt.sessions * opt.tokens);
    run.all_tokens.reserve(opt.sessions * opt.tokens);

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
    bool ok = num(report, "streams_failed") == 0 && !run.timed_out && run.verify_failures == 0 &&
              run.chatd_go.ok;
    return ok ? 0 : 1;
}
