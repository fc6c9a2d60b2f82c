#pragma once
// Runs a blocking function on another executor (a store thread) and resumes the
// awaiting coroutine on its own executor with the result. This is how the event
// loop stays free of blocking calls. An exception `fn` throws is rethrown in
// the awaiting coroutine, never on the store thread (where it would end the
// process).
#include "core/net.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace chatd {

// Deliberately not a coroutine: GCC 12 mishandles coroutine parameters of
// closure type, so the function object travels through async_initiate only.
template <class Executor, class F>
net::awaitable<std::invoke_result_t<F&>> offload(Executor target, F fn) {
    using R = std::invoke_result_t<F&>;
    auto initiate = [target](auto handler, F f) {
        auto work = net::make_work_guard(net::get_associated_executor(handler));
        net::post(target, [handler = std::move(handler), f = std::move(f),
                           work = std::move(work)]() mutable {
            std::exception_ptr failure;
            std::optional<R> result;
            try {
                result.emplace(f());
            } catch (...) {
                failure = std::current_exception();
            }
            auto home = work.get_executor();
            net::post(home, [handler = std::move(handler), failure, result = std::move(result),
                             work = std::move(work)]() mutable {
                std::move(handler)(failure, result ? std::move(*result) : R{});
            });
        });
    };
    return net::async_initiate<const net::use_awaitable_t<>&, void(std::exception_ptr, R)>(
        initiate, net::use_awaitable, std::move(fn));
}

}  // namespace chatd
