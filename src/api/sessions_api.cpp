#include "api/sessions_api.hpp"

#include "api/json_codec.hpp"

#include <boost/json/serialize.hpp>

namespace chatd::api {
namespace {

using http::Status;
using V = http::bhttp::verb;

// A page of a list: its items under `key`, and the `before` of the next page.
template <class Item, class Id>
std::string page_body(std::string_view key, const std::vector<Item>& items,
                      const std::optional<Id>& next) {
    json::array out;
    for (const auto& item : items) out.push_back(to_json(item));
    json::object body{{key, std::move(out)}, {"next", nullptr}};
    if (next) body["next"] = next->value;
    return json::serialize(body);
}

}  // namespace

SessionsApi::SessionsApi(engine::Conversations& conversations, store::ChatStore& store,
                         SessionsConfig config)
    : conversations_(conversations), store_(store), config_(config) {}

void SessionsApi::add_routes(Routes& routes) {
    const std::string p = "/api/v1/chat";
    routes.add(V::post, p + "/sessions", {[this](Call& c) { return create(c); }});
    routes.add(V::get, p + "/sessions", {[this](Call& c) { return list(c); }});
    routes.add(V::get, p + "/sessions/{}", {[this](Call& c) { return get(c); }});
    routes.add(V::patch, p + "/sessions/{}", {[this](Call& c) { return update(c); }});
    routes.add(V::delete_, p + "/sessions/{}", {[this](Call& c) { return remove(c); }});
    routes.add(V::get, p + "/sessions/{}/messages", {[this](Call& c) { return history(c); }});
    routes.add(V::get, p + "/messages/{}/status", {[this](Call& c) { return activity(c); }});
    routes.add(V::get, p + "/messages/{}/poll", {[this](Call& c) { return poll(c); }});
}

net::awaitable<http::After> SessionsApi::create(Call& c) {
    auto draft = parse_session_draft(c.request.body(), config_.requests);
    if (!draft) co_return co_await c.fail(draft.error());
    auto session = co_await conversations_.create_session(c.user, std::move(*draft));
    if (!session) co_return co_await c.fail(session.error());
    co_return co_await c.reply(Status::created, json::serialize(to_json(*session)));
}

net::awaitable<http::After> SessionsApi::list(Call& c) {
    auto page = parse_session_page(c.query, 50, 200);
    if (!page) co_return co_await c.fail(page.error());
    auto sessions = co_await store_.list_sessions(c.user, page->limit, page->before);
    if (!sessions) co_return co_await c.fail(sessions.error());
    co_return co_await c.reply(Status::ok,
                               page_body("sessions", sessions->sessions, sessions->next));
}

net::awaitable<http::After> SessionsApi::get(Call& c) {
    auto id = session_id(c.params[0]);
    if (!id) co_return co_await c.fail(id.error());
    auto session = co_await store_.get_session(c.user, *id);
    if (!session) co_return co_await c.fail(session.error());
    co_return co_await c.reply(Status::ok, json::serialize(to_json(*session)));
}

net::awaitable<http::After> SessionsApi::update(Call& c) {
    auto id = session_id(c.params[0]);
    if (!id) co_return co_await c.fail(id.error());
    auto draft = parse_session_draft(c.request.body(), config_.requests);
    if (!draft) co_return co_await c.fail(draft.error());
    auto session = co_await conversations_.update_session(c.user, *id, std::move(*draft));
    if (!session) co_return co_await c.fail(session.error());
    co_return co_await c.reply(Status::ok, json::serialize(to_json(*session)));
}

net::awaitable<http::After> SessionsApi::remove(Call& c) {
    auto id = session_id(c.params[0]);
    if (!id) co_return co_await c.fail(id.error());
    auto deleted = co_await conversations_.delete_session(c.user, *id);
    if (!deleted) co_return co_await c.fail(deleted.error());
    co_return co_await c.reply(c.empty(Status::no_content));
}

net::awaitable<http::After> SessionsApi::history(Call& c) {
    auto id = session_id(c.params[0]);
    if (!id) co_return co_await c.fail(id.error());
    auto max = config_.max_history_page;
    auto page = parse_message_page(c.query, max, max);
    if (!page) co_return co_await c.fail(page.error());
    auto messages = co_await store_.list_messages_page(c.user, *id, page->before, page->limit);
    if (!messages) co_return co_await c.fail(messages.error());
    co_return co_await c.reply(Status::ok,
                               page_body("messages", messages->messages, messages->next));
}

net::awaitable<http::After> SessionsApi::activity(Call& c) {
    auto id = session_id(c.params[0]);
    if (!id) co_return co_await c.fail(id.error());
    auto activity = co_await conversations_.activity(c.user, *id);
    if (!activity) co_return co_await c.fail(activity.error());
    json::object body{{"has_active_generation", activity->generating.has_value()},
                      {"generating_message_id", nullptr},
                      {"last_updated", nullptr}};
    if (activity->generating) body["generating_message_id"] = activity->generating->value;
    if (activity->last_updated) body["last_updated"] = format_iso8601(*activity->last_updated);
    co_return co_await c.reply(Status::ok, json::serialize(body));
}

net::awaitable<http::After> SessionsApi::poll(Call& c) {
    auto id = session_id(c.params[0]);
    if (!id) co_return co_await c.fail(id.error());
    auto since = parse_since(c.query);
    if (!since) co_return co_await c.fail(since.error());
    since->limit = config_.max_poll_messages;
    auto changes = co_await store_.changed_since(c.user, *id, *since);
    if (!changes) co_return co_await c.fail(changes.error());
    json::array messages;
    for (const auto& m : changes->messages) messages.push_back(to_json(m));
    json::object body{{"messages", std::move(messages)},
                      {"has_more_generating", changes->has_more_generating},
                      {"has_more_changes", changes->truncated},
                      {"next_since", "c" + std::to_string(changes->next_seq)}};
    co_return co_await c.reply(Status::ok, json::serialize(body));
}

}  // namespace chatd::api
