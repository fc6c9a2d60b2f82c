#pragma once
// The AI SDK's chat endpoints (`useChat` with DefaultChatTransport pointed at
// /api/v1/ai-sdk/chat), on the same sessions, generations and streams as the
// REST API:
// - POST {api}: stores the last user message of the transport's body in the
//   chat's session (made on first use), starts its answer in the background
//   as every send does, and streams it as a UI message stream.
// - GET {api}/{chat}/stream: the transport's reconnect. 204 when nothing
//   generates; else the answer so far from `start` (a replay), then the
//   rest. With a cursor (Last-Event-ID, or `last_event_id` in the query),
//   only what follows it, of that message, even if it has ended since.
// - POST {api}/{chat}/stop: cancels the answer (closing the fetch is only a
//   disconnect).
// - GET {api}/{chat}/messages: the history as UI messages, the answer in
//   progress once, with what is committed.
#include "api/call.hpp"
#include "api/requests.hpp"
#include "api/streams_api.hpp"
#include "engine/conversations.hpp"

namespace chatd::api {

struct UiChatConfig {
    RequestLimits requests;
    std::size_t max_history_page = 1000;
};

class UiChatApi {
public:
    UiChatApi(engine::Conversations& conversations, StreamsApi& streams, store::ChatStore& store,
              UiChatConfig config);

    void add_routes(Routes& routes);

private:
    net::awaitable<http::After> send(Call& c);
    net::awaitable<http::After> resume(Call& c);
    net::awaitable<http::After> stop(Call& c);
    net::awaitable<http::After> history(Call& c);

    engine::Conversations& conversations_;
    StreamsApi& streams_;
    store::ChatStore& store_;
    UiChatConfig config_;
};

}  // namespace chatd::api
