#pragma once
// HTTP vocabulary shared by the server and its handlers.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace chatd::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;
using Status = bhttp::status;

// What the connection does after a handler returns. `taken`: the handler
// moved the Connection away and answers on it alone (a long-lived stream);
// the server forgets it.
enum class After { keep_alive, close, taken };

}  // namespace chatd::http
