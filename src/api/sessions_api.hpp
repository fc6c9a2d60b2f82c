#pragma once
// Sessions and what is in them: create, list, read, change, delete; a session's
// history (paged), its activity (is an answer generating?) and its changes
// since a point (the poll).
#include "api/call.hpp"
#include "api/requests.hpp"
#include "engine/conversations.hpp"
#include "store/chat_store.hpp"

namespace chatd::api {

struct SessionsConfig {
    RequestLimits requests;
    // What one answer may hold: a history page, a poll.
    std::size_t max_history_page = 1000;
    std::size_t max_poll_messages = 500;
};

class SessionsApi {
public:
    SessionsApi(engine::Conversations& conversations, store::ChatStore& store,
                SessionsConfig config);

    void add_routes(Routes& routes);

private:
    net::awaitable<http::After> create(Call& c);
    net::awaitable<http::After> list(Call& c);
    net::awaitable<http::After> get(Call& c);
    net::awaitable<http::After> update(Call& c);
    net::awaitable<http::After> remove(Call& c);
    net::awaitable<http::After> history(Call& c);
    net::awaitable<http::After> activity(Call& c);
    net::awaitable<http::After> poll(Call& c);

    engine::Conversations& conversations_;
    store::ChatStore& store_;
    SessionsConfig config_;
};

}  // namespace chatd::api
