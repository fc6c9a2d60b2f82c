// The cost of writing one delta event to a client on loopback: SseWriter
// (a non-blocking writev, a deadline only for what the kernel does not take)
// against the shape it replaced (a deadline armed and cleared around an
// async_write for every event), in the same run. The client side is drained
// between iterations, outside the timing, so every write fits the buffer as
// it does for a client that keeps up. Run: build/release/bin/chatd_micro
// --benchmark_filter=sse_write
#include "http/sse.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <string>

namespace {

using namespace chatd;
namespace net = boost::asio;
using tcp = net::ip::tcp;

const std::string kEvent =
    "event: delta\nid: msg_01JB8Z5Q0000000000000000AA.12345\n"
    "data: {\"message_id\":\"msg_01JB8Z5Q0000000000000000AA\",\"offset\":12318,"
    "\"text\":\"@1732406400000000:9e3779b9 \"}\n\n";

// A connected loopback pair: the server side as chatd holds it.
struct Loopback {
    net::io_context io{1};
    http::beast::tcp_stream server{io};
    tcp::socket client{io};

    Loopback() {
        tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
        client.connect(acceptor.local_endpoint());
        acceptor.accept(server.socket());
        client.non_blocking(true);
    }
    void drain() {
        std::array<char, 65536> buf;
        boost::system::error_code ec;
        while (client.read_some(net::buffer(buf), ec) > 0) {
        }
    }
    // Runs `write` `batch` times as one coroutine to its end.
    template <class Write>
    void run(Write write, std::int64_t batch) {
        bool ok = true;
        net::co_spawn(
            io,
            [&]() -> net::awaitable<void> {
                for (std::int64_t i = 0; i < batch && ok; ++i) ok = co_await write();
            },
            net::detached);
        io.restart();
        io.run();
        if (!ok) throw std::runtime_error("write failed");
    }
};

constexpr std::int64_t kBatch = 64;  // events per drain

void BM_sse_write(benchmark::State& state) {
    Loopback lo;
    http::SseWriter writer(lo.server.socket(), {});
    for (auto _ : state) {
        lo.run([&] { return writer.write(kEvent); }, kBatch);
        state.PauseTiming();
        lo.drain();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_sse_write);

// The replaced shape, for comparison.
void BM_sse_write_with_deadline_per_event(benchmark::State& state) {
    Loopback lo;
    auto write = [&]() -> net::awaitable<bool> {
        lo.server.expires_after(std::chrono::seconds(10));
        auto [ec, n] = co_await net::async_write(lo.server, net::buffer(kEvent),
                                                 net::as_tuple(net::use_awaitable));
        lo.server.expires_never();
        co_return !ec;
    };
    for (auto _ : state) {
        lo.run(write, kBatch);
        state.PauseTiming();
        lo.drain();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_sse_write_with_deadline_per_event);

}  // namespace
