#include "core/offload.hpp"

#include "support/run.hpp"

#include <boost/asio/thread_pool.hpp>
#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>

namespace chatd {
namespace {

TEST(Offload, RunsOnTheTargetAndResumesOnTheCaller) {
    boost::asio::io_context io;
    boost::asio::thread_pool pool(1);
    auto caller = std::this_thread::get_id();
    std::thread::id ran_on;
    auto task = [&]() -> net::awaitable<int> {
        int v = co_await offload(pool.get_executor(), [&] {
            ran_on = std::this_thread::get_id();
            return 42;
        });
        EXPECT_EQ(std::this_thread::get_id(), caller);
        co_return v;
    };
    EXPECT_EQ(test::run(io, task()), 42);
    EXPECT_NE(ran_on, caller);
    pool.join();
}

// An exception on the store thread reaches the awaiting coroutine; the
// thread (and the process) live on.
TEST(Offload, AnExceptionIsRethrownInTheAwaitingCoroutine) {
    boost::asio::io_context io;
    boost::asio::thread_pool pool(1);
    auto failing = [&]() -> net::awaitable<std::string> {
        try {
            co_await offload(pool.get_executor(), []() -> int { throw std::logic_error("bug"); });
        } catch (const std::logic_error& e) {
            co_return e.what();
        }
        co_return "no exception";
    };
    EXPECT_EQ(test::run(io, failing()), "bug");
    auto after = [&]() -> net::awaitable<int> {
        co_return co_await offload(pool.get_executor(), [] { return 7; });
    };
    EXPECT_EQ(test::run(io, after()), 7);
    pool.join();
}

}  // namespace
}  // namespace chatd
