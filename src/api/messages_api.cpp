#include "api/messages_api.hpp"

#include "api/json_codec.hpp"

#include <boost/json/serialize.hpp>

namespace chatd::api {

using http::Status;
using V = http::bhttp::verb;

MessagesApi::MessagesApi(engine::Conversations& conversations, StreamsApi& streams,
                         RequestLimits limits)
    : conversations_(conversations), streams_(streams), limits_(limits) {}

void MessagesApi::add_routes(Routes& routes) {
    const std::string p = "/api/v1/chat";
    routes.add(V::post, p + "/sessions/{}/messages", {[this](Call& c) { return send(c); }});
    routes.add(V::get, p + "/messages/{}/content", {[this](Call& c) { return content(c); }});
    routes.add(V::post, p + "/messages/{}/cancel", {[this](Call& c) { return cancel(c); }});
}

net::awaitable<http::After> MessagesApi::send(Call& c) {
    auto session = session_id(c.params[0]);
    if (!session) co_return co_await c.fail(session.error());
    auto prompt = parse_prompt(c.request, limits_);
    if (!prompt) co_return co_await c.fail(prompt.error());
    prompt->request_id = c.request_id;
    // The stream's slot first: a send that could not stream its answer
    // starts nothing.
    StreamSlots::Slot slot;
    bool stream = wants_event_stream(c.request);
    if (stream) {
        auto opened = streams_.open_slot(c.user);
        if (!opened) co_return co_await c.fail(opened.error());
        slot = std::move(*opened);
    }
    auto outcome = co_await conversations_.send(c.user, *session, std::move(*prompt));
    if (!outcome) co_return co_await c.fail(outcome.error());
    if (outcome->active_message) {
        Problem conflict(Error::generation_in_progress);
        conflict.active_message = outcome->active_message;
        co_return co_await c.fail(conflict);
    }
    const auto& turn = *outcome->turn;
    if (stream) {
        engine::Cursor from{turn.assistant_message.id};  // named: GCC 12 and co_await
        co_return co_await streams_.follow(c, std::move(slot), std::move(from));
    }
    json::object body{{"user_message", to_json(turn.user_message)},
                      {"assistant_message", to_json(turn.assistant_message)}};
    co_return co_await c.reply(Status::accepted, json::serialize(body));
}

net::awaitable<http::After> MessagesApi::content(Call& c) {
    auto id = message_id(c.params[0]);
    if (!id) co_return co_await c.fail(id.error());
    auto m = co_await conversations_.find_message(c.user, *id);
    if (!m) co_return co_await c.fail(m.error());
    engine::Cursor end{m->id, static_cast<std::int64_t>(m->content.size()),
                       static_cast<std::int64_t>(m->reasoning.size())};
    json::object body{{"id", m->id.value},
                      {"content", m->content},
                      {"status", to_string(m->status)},
                      {"last_updated", format_iso8601(m->last_updated)},
                      {"cursor", engine::encode_cursor(end)}};
    if (!m->reasoning.empty()) body["reasoning"] = m->reasoning;
    co_return co_await c.reply(Status::ok, json::serialize(body));
}

net::awaitable<http::After> MessagesApi::cancel(Call& c) {
    auto id = message_id(c.params[0]);
    if (!id) co_return co_await c.fail(id.error());
    auto m = co_await conversations_.cancel(c.user, *id);
    if (!m) co_return co_await c.fail(m.error());
    co_return co_await c.reply(Status::ok, json::serialize(to_json(*m)));
}

}  // namespace chatd::api
