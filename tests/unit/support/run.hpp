#pragma once
// Runs one coroutine to completion on a private io_context and returns its
// result: store and engine tests drive real coroutines without a server.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <stdexcept>

namespace chatd::test {

template <class T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
    auto future = boost::asio::co_spawn(io, std::move(task), boost::asio::use_future);
    io.restart();
    while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        if (io.run_one_for(std::chrono::seconds(10)) == 0 &&
            future.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
            throw std::runtime_error("coroutine made no progress for 10 s");
    }
    return future.get();
}

}  // namespace chatd::test
