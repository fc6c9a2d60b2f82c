#pragma once
// Messages: send one (and start its answer, answered as JSON or, with
// `Accept: text/event-stream`, as the answer's stream), read one's content
// with its resume cursor, cancel a generating one.
#include "api/call.hpp"
#include "api/requests.hpp"
#include "api/streams_api.hpp"
#include "engine/conversations.hpp"

namespace chatd::api {

class MessagesApi {
public:
    MessagesApi(engine::Conversations& conversations, StreamsApi& streams, RequestLimits limits);

    void add_routes(Routes& routes);

private:
    net::awaitable<http::After> send(Call& c);
    net::awaitable<http::After> content(Call& c);
    net::awaitable<http::After> cancel(Call& c);

    engine::Conversations& conversations_;
    StreamsApi& streams_;
    RequestLimits limits_;
};

}  // namespace chatd::api
