// chatd_floor: the floor chatd's load figures are measured against (issue 13).
//
// A minimal C++ server with chatd's HTTP shape and nothing else: create a
// session, send a message (answered as an SSE stream on the same connection
// with `Accept: text/event-stream`, else 202 with the assistant message's id),
// read a message's SSE stream (from `Last-Event-ID` when given), read its
// content. It generates the same stamped tokens as chatd --sim-stamp-tokens at
// the same rate and stores nothing: answers live in memory until it stops.
// Boost.Beast on one thread, one write per token event per subscriber (events
// that come while a write is in flight go out together after it), its timers
// on a 1 ms grid as Node's are. It shares no code with chatd: what it costs
// is what this HTTP work costs, the floor for chatd's CPU per token.
//
//   chatd_floor --port 0 --rate 50 --tokens 500
// prints `floor listening on http://127.0.0.1:<port>` once it listens and
// stops on SIGTERM or SIGINT. bench/run_load.sh --target floor runs it.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::string_view kApi = "/api/v1/chat/";
constexpr std::string_view kStreamHead =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream; charset=utf-8\r\n"
    "Cache-Control: no-cache\r\n"
    "Connection: close\r\n"
    "\r\n"
    "retry: 1000\n\n";

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    double rate = 50;
    std::size_t tokens = 500;
};

std::string sse_event(std::string_view event, std::string_view id, std::string_view data) {
    std::string out;
    out.reserve(event.size() + id.size() + data.size() + 24);
    out.append("event: ").append(event).append("\nid: ").append(id);
    out.append("\ndata: ").append(data).append("\n\n");
    return out;
}

// One SSE reader. Frames queue while a write is in flight and go out in the
// next write; after end() the connection closes once all is written.
class Subscriber : public std::enable_shared_from_this<Subscriber> {
public:
    explicit Subscriber(tcp::socket socket) : socket_(std::move(socket)) {}

    void push(std::string_view frame) {
        queued_.append(frame);
        if (!busy_) flush();
    }
    void end() {
        ending_ = true;
        if (!busy_) flush();
    }
    bool dead() const { return dead_; }

private:
    void flush() {
        if (queued_.empty()) {
            if (ending_) close();
            return;
        }
        busy_ = true;
        writing_.swap(queued_);
        queued_.clear();
        net::async_write(socket_, net::buffer(writing_),
                         [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                             self->busy_ = false;
                             self->writing_.clear();
                             if (ec) return self->close();
                             self->flush();
                         });
    }
    void close() {
        dead_ = true;
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
        socket_.close(ignored);
    }

    tcp::socket socket_;
    std::string queued_;
    std::string writing_;
    bool busy_ = false;
    bool ending_ = false;
    bool dead_ = false;
};

struct Message {
    explicit Message(net::io_context& io) : timer(io) {}
    std::string id;
    std::string session_id;
    std::string content;
    std::size_t tokens = 0;
    bool done = false;
    std::vector<std::shared_ptr<Subscriber>> subscribers;
    net::steady_timer timer;
    steady::time_point next_at;
};

class Floor {
public:
    Floor(net::io_context& io, Options options) : io_(io), options_(std::move(options)) {}

    net::awaitable<void> serve(tcp::socket socket) {
        boost::beast::flat_buffer buffer;
        for (;;) {
            bhttp::request_parser<bhttp::string_body> parser;
            parser.body_limit(64 * 1024);
            auto [ec, n] = co_await bhttp::async_read(socket, buffer, parser, use_tuple);
            (void)n;
            if (ec) co_return;
            auto& req = parser.get();
            Reply reply = route(req);
            if (reply.stream) {
                attach(reply.stream, std::move(socket), reply.stream_from);
                co_return;
            }
            if (reply.idle) {
                hold_idle(std::move(socket));
                co_return;
            }
            bhttp::response<bhttp::string_body> res(reply.status, req.version());
            res.set(bhttp::field::content_type, "application/json");
            res.keep_alive(req.keep_alive());
            res.body() = std::move(reply.body);
            res.prepare_payload();
            auto [wec, wn] = co_await bhttp::async_write(socket, res, use_tuple);
            (void)wn;
            if (wec || !req.keep_alive()) co_return;
        }
    }

private:
    struct Reply {
        bhttp::status status = bhttp::status::not_found;
        std::string body = R"({"error":{"code":"not_found"}})";
        std::shared_ptr<Message> stream;  // answer with this message's stream
        std::size_t stream_from = 0;
        bool idle = false;  // a session stream: its head, then nothing
    };

    static Reply error(bhttp::status status, std::string_view code) {
        return {status, R"({"error":{"code":")" + std::string(code) + R"("}})", nullptr, 0};
    }

    Reply route(const bhttp::request<bhttp::string_body>& req) {
        std::string_view target = req.target();
        if (!target.starts_with(kApi)) return {};
        target.remove_prefix(kApi.size());
        auto slash = target.find('/');
        auto kind = target.substr(0, slash);
        auto rest = slash == std::string_view::npos ? std::string_view{} : target.substr(slash + 1);
        auto id = rest.substr(0, rest.find('/'));
        auto action = rest.size() > id.size() ? rest.substr(id.size() + 1) : std::string_view{};
        if (kind == "sessions" && rest.empty() && req.method() == bhttp::verb::post)
            return create_session();
        if (kind == "sessions" && action == "messages" && req.method() == bhttp::verb::post)
            return send(id, req);
        if (kind != "messages" || req.method() != bhttp::verb::get) return {};
        // The session stream, `messages/stream?session_id=`: no answer comes
        // while the benchmarks hold it, so it stays idle.
        if (id.starts_with("stream?session_id=")) {
            Reply idle;
            idle.idle = true;
            return idle;
        }
        auto it = messages_.find(std::string(id));
        if (it == messages_.end()) return {};
        if (action == "content") {
            auto& m = *it->second;
            json::object o = message_json(m);
            o["content"] = m.content;
            return {bhttp::status::ok, json::serialize(o), nullptr, 0};
        }
        if (action == "stream") return stream_from_cursor(it->second, req);
        return {};
    }

    Reply create_session() {
        auto id = new_id("ses_");
        sessions_.insert(id);
        json::object o{{"id", id}, {"title", nullptr}, {"created_at", now_text()}};
        return {bhttp::status::created, json::serialize(o), nullptr, 0};
    }

    Reply send(std::string_view session_id, const bhttp::request<bhttp::string_body>& req) {
        if (!sessions_.contains(std::string(session_id)))
            return error(bhttp::status::not_found, "not_found");
        boost::system::error_code ec;
        auto body = json::parse(req.body(), ec);
        if (ec || !body.is_object() || !body.as_object().contains("content") ||
            !body.as_object().at("content").is_string())
            return error(bhttp::status::bad_request, "invalid_request");
        auto m = std::make_shared<Message>(io_);
        m->id = new_id("msg_");
        m->session_id = std::string(session_id);
        m->next_at = steady::now();
        messages_.emplace(m->id, m);
        schedule(m);
        auto accept = req[bhttp::field::accept];
        if (accept.find("text/event-stream") != std::string_view::npos) return {{}, {}, m, 0};
        json::object o{{"user_message", {{"id", new_id("msg_")}, {"role", "user"}}},
                       {"assistant_message", message_json(*m)}};
        return {bhttp::status::accepted, json::serialize(o), nullptr, 0};
    }

    Reply stream_from_cursor(const std::shared_ptr<Message>& m,
                             const bhttp::request<bhttp::string_body>& req) {
        std::size_t from = 0;
        std::string_view last = req["Last-Event-ID"];
        if (!last.empty()) {
            auto dot = last.rfind('.');
            if (dot == std::string_view::npos || last.substr(0, dot) != m->id)
                return error(bhttp::status::bad_request, "invalid_cursor");
            auto digits = last.substr(dot + 1);
            auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), from);
            if (err != std::errc{} || end != digits.data() + digits.size() ||
                from > m->content.size())
                return error(bhttp::status::bad_request, "invalid_cursor");
        }
        return {{}, {}, m, from};
    }

    // Writes the stream's head and what the message has from `from`, then
    // follows it (or ends, when it has ended).
    void attach(const std::shared_ptr<Message>& m, tcp::socket socket, std::size_t from) {
        socket.set_option(tcp::no_delay(true));
        auto s = std::make_shared<Subscriber>(std::move(socket));
        s->push(kStreamHead);
        if (from == 0 && !m->done) s->push(status_event(*m));
        if (from < m->content.size()) s->push(delta_event(*m, from));
        if (m->done) {
            s->push(status_event(*m));
            s->end();
            return;
        }
        m->subscribers.push_back(std::move(s));
    }

    // An idle session stream: the head, then nothing; held until the floor
    // stops (the benchmarks close them).
    void hold_idle(tcp::socket socket) {
        socket.set_option(tcp::no_delay(true));
        auto s = std::make_shared<Subscriber>(std::move(socket));
        s->push(kStreamHead);
        std::erase_if(idle_, [](const auto& x) { return x->dead(); });
        idle_.push_back(std::move(s));
    }

    void schedule(const std::shared_ptr<Message>& m) {
        m->next_at += std::chrono::duration_cast<steady::duration>(
            std::chrono::duration<double>(1.0 / options_.rate));
        // Node's timers fire on whole milliseconds.
        m->timer.expires_at(steady::time_point(
            std::chrono::ceil<std::chrono::milliseconds>(m->next_at.time_since_epoch())));
        m->timer.async_wait([this, m](boost::system::error_code ec) {
            if (!ec) emit(m);
        });
    }

    void emit(const std::shared_ptr<Message>& m) {
        // Stamped with the time it was due, as chatd --sim-stamp-tokens does.
        auto due = std::chrono::system_clock::now() +
                   std::chrono::duration_cast<std::chrono::system_clock::duration>(m->next_at -
                                                                                   steady::now());
        char token[48];
        std::snprintf(token, sizeof token, "@%lld:%08" PRIx32 " ",
                      static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                 due.time_since_epoch())
                                                 .count()),
                      static_cast<std::uint32_t>(random_()));
        auto from = m->content.size();
        m->content += token;
        ++m->tokens;
        m->done = m->tokens >= options_.tokens;
        std::string frame = delta_event(*m, from);
        if (m->done) frame += status_event(*m);
        std::erase_if(m->subscribers, [](const auto& s) { return s->dead(); });
        for (auto& s : m->subscribers) {
            s->push(frame);
            if (m->done) s->end();
        }
        if (m->done)
            m->subscribers.clear();
        else
            schedule(m);
    }

    std::string delta_event(const Message& m, std::size_t from) const {
        json::object o{{"message_id", m.id},
                       {"offset", from},
                       {"text", std::string_view(m.content).substr(from)}};
        return sse_event("delta", cursor(m), json::serialize(o));
    }

    std::string status_event(const Message& m) const {
        return sse_event("status", cursor(m), json::serialize(message_json(m)));
    }

    static std::string cursor(const Message& m) {
        return m.id + "." + std::to_string(m.content.size());
    }

    json::object message_json(const Message& m) const {
        json::object o{{"id", m.id},
                       {"session_id", m.session_id},
                       {"role", "assistant"},
                       {"status", m.done ? "completed" : "generating"}};
        if (m.done) o["usage"] = {{"output_tokens", m.tokens}};
        return o;
    }

    std::string new_id(std::string_view prefix) {
        static constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
        std::string id(prefix);
        std::uint64_t a = random_(), b = ++counter_;
        for (int i = 0; i < 26; ++i) {
            id += kAlphabet[(i < 13 ? a : b) & 31];
            (i < 13 ? a : b) >>= 5;
        }
        return id;
    }

    static std::string now_text() {
        return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    }

    net::io_context& io_;
    Options options_;
    std::mt19937_64 random_{std::random_device{}()};
    std::uint64_t counter_ = 0;
    std::unordered_set<std::string> sessions_;
    std::unordered_map<std::string, std::shared_ptr<Message>> messages_;
    std::vector<std::shared_ptr<Subscriber>> idle_;
};

net::awaitable<void> accept_loop(tcp::acceptor& acceptor, Floor& floor) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
        if (ec == net::error::operation_aborted) co_return;
        if (ec) continue;  // e.g. out of descriptors: the client retries
        socket.set_option(tcp::no_delay(true));
        net::co_spawn(acceptor.get_executor(), floor.serve(std::move(socket)), net::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    CLI::App app{"chatd_floor: chatd's HTTP shape with nothing behind it, the benchmarks' floor"};
    app.add_option("--host", options.host, "address to listen on");
    app.add_option("--port", options.port, "port (0: any free one)");
    app.add_option("--rate", options.rate, "tokens per second per answer")
        ->check(CLI::PositiveNumber);
    app.add_option("--tokens", options.tokens, "tokens per answer")->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);

    net::io_context io(1);
    tcp::acceptor acceptor(io, {net::ip::make_address(options.host), options.port});
    Floor floor(io, options);
    net::co_spawn(io, accept_loop(acceptor, floor), net::detached);
    net::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) { io.stop(); });
    std::printf("floor listening on http://%s:%u\n", options.host.c_str(),
                static_cast<unsigned>(acceptor.local_endpoint().port()));
    std::fflush(stdout);
    io.run();
    std::printf("floor stopped\n");
    return 0;
}
