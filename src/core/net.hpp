#pragma once
// The one namespace alias for Boost.Asio used across chatd.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace chatd {
namespace net = boost::asio;
}  // namespace chatd
