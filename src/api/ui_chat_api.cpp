#include "api/ui_chat_api.hpp"

#include "api/json_codec.hpp"
#include "api/ui_message_stream.hpp"
#include "core/utf8.hpp"

#include <boost/json/serialize.hpp>

namespace chatd::api {
namespace {

using http::Status;
using V = http::bhttp::verb;

// A new chat's title: the first line of its first message, shortened.
std::string title_of(std::string_view text) {
    constexpr std::size_t kMaxBytes = 80;
    text = text.substr(0, text.find('\n'));
    if (text.size() <= kMaxBytes) return std::string(text);
    return std::string(text.substr(0, utf8_floor(text, kMaxBytes))) + "…";
}

// A stored message as the AI SDK's UIMessage: its reasoning and its text as
// one part each, and chatd's own fields as metadata.
json::object ui_message(const store::Message& m) {
    bool live = m.status == store::MessageStatus::generating;
    json::array parts;
    if (!m.reasoning.empty())
        parts.push_back(json::object{{"type", "reasoning"},
                                     {"text", m.reasoning},
                                     {"state", live && m.content.empty() ? "streaming" : "done"}});
    if (!m.content.empty())
        parts.push_back(json::object{
            {"type", "text"}, {"text", m.content}, {"state", live ? "streaming" : "done"}});
    json::object metadata{{"status", to_string(m.status)},
                          {"created_at", format_iso8601(m.created_at)}};
    if (m.error)
        metadata["error"] = json::object{{"code", m.error->code}, {"message", m.error->message}};
    return {{"id", m.id.value},
            {"role", to_string(m.role)},
            {"parts", std::move(parts)},
            {"metadata", std::move(metadata)}};
}

}  // namespace

UiChatApi::UiChatApi(engine::Conversations& conversations, StreamsApi& streams,
                     store::ChatStore& store, UiChatConfig config)
    : conversations_(conversations), streams_(streams), store_(store), config_(config) {}

void UiChatApi::add_routes(Routes& routes) {
    const std::string p = "/api/v1/ai-sdk/chat";
    routes.add(V::post, p, {[this](Call& c) { return send(c); }});
    routes.add(V::get, p + "/{}/stream",
               {[this](Call& c) { return resume(c); }, Access::user, Body::stream});
    routes.add(V::post, p + "/{}/stop", {[this](Call& c) { return stop(c); }});
    routes.add(V::get, p + "/{}/messages", {[this](Call& c) { return history(c); }});
}

net::awaitable<http::After> UiChatApi::send(Call& c) {
    auto request = parse_ui_send(c.request.body(), config_.requests);
    if (!request) co_return co_await c.fail(request.error());
    request->prompt.request_id = c.request_id;
    auto session = co_await conversations_.chat(c.user, std::move(request->chat_id), true,
                                                title_of(request->prompt.content));
    if (!session) co_return co_await c.fail(session.error());
    // The stream's slot first: a send that could not stream its answer
    // starts nothing.
    auto slot = streams_.open_slot(c.user);
    if (!slot) co_return co_await c.fail(slot.error());
    auto outcome = co_await conversations_.send(c.user, session->id, std::move(request->prompt));
    if (!outcome) co_return co_await c.fail(outcome.error());
    if (outcome->active_message) {
        Problem conflict(Error::generation_in_progress);
        conflict.active_message = outcome->active_message;
        co_return co_await c.fail(conflict);
    }
    UiMessageStream format(false);
    engine::Cursor from{outcome->turn->assistant_message.id};  // named: GCC 12 and co_await
    co_return co_await streams_.follow(c, std::move(*slot), std::move(from), format);
}

net::awaitable<http::After> UiChatApi::resume(Call& c) {
    auto chat = chat_id(c.params[0]);
    if (!chat) co_return co_await c.fail(chat.error());
    auto cursor = parse_cursor(c.request, c.query);
    if (!cursor) co_return co_await c.fail(cursor.error());
    auto session = co_await conversations_.chat(c.user, std::move(*chat), false);
    if (!session && session.error() == Error::not_found)
        co_return co_await c.reply(c.empty(Status::no_content));
    if (!session) co_return co_await c.fail(session.error());
    std::optional<engine::Cursor> from;
    if (*cursor) {
        // The rest of the cursor's message, ended or not: the client holds
        // the part before it.
        auto start = co_await conversations_.session_stream_start(c.user, session->id, *cursor);
        if (!start) co_return co_await c.fail(start.error());
        from = std::move(start->first);
    } else {
        auto activity = co_await conversations_.activity(c.user, session->id);
        if (!activity) co_return co_await c.fail(activity.error());
        if (activity->generating) from = engine::Cursor{*activity->generating};
    }
    if (!from) co_return co_await c.reply(c.empty(Status::no_content));
    auto slot = streams_.open_slot(c.user);
    if (!slot) co_return co_await c.fail(slot.error());
    bool continuation = cursor->has_value();
    UiMessageStream format(continuation);
    co_return co_await streams_.follow(c, std::move(*slot), std::move(*from), format);
}

net::awaitable<http::After> UiChatApi::stop(Call& c) {
    auto chat = chat_id(c.params[0]);
    if (!chat) co_return co_await c.fail(chat.error());
    auto session = co_await conversations_.chat(c.user, std::move(*chat), false);
    if (!session) co_return co_await c.fail(session.error());
    auto activity = co_await conversations_.activity(c.user, session->id);
    if (!activity) co_return co_await c.fail(activity.error());
    if (!activity->generating)
        co_return co_await c.fail({Error::not_generating, "nothing is generating in this chat"});
    auto m = co_await conversations_.cancel(c.user, *activity->generating);
    if (!m) co_return co_await c.fail(m.error());
    co_return co_await c.reply(Status::ok, json::serialize(ui_message(*m)));
}

net::awaitable<http::After> UiChatApi::history(Call& c) {
    auto chat = chat_id(c.params[0]);
    if (!chat) co_return co_await c.fail(chat.error());
    auto page = parse_message_page(c.query, config_.max_history_page, config_.max_history_page);
    if (!page) co_return co_await c.fail(page.error());
    json::array out;
    // A chat not made yet has no messages (a new chat's page loads it too).
    auto session = co_await conversations_.chat(c.user, std::move(*chat), false);
    if (!session && session.error() != Error::not_found) co_return co_await c.fail(session.error());
    if (session) {
        auto messages =
            co_await store_.list_messages_page(c.user, session->id, page->before, page->limit);
        if (!messages) co_return co_await c.fail(messages.error());
        for (const auto& m : messages->messages) out.push_back(ui_message(m));
    }
    co_return co_await c.reply(Status::ok, json::serialize(out));
}

}  // namespace chatd::api
