#include "api/streams_api.hpp"

#include "api/requests.hpp"

namespace chatd::api {

using V = http::bhttp::verb;

StreamsApi::StreamsApi(engine::Conversations& conversations, engine::Feeds& feeds,
                       store::ChatStore& store, StreamConfig config,
                       std::size_t max_streams_per_user)
    : conversations_(conversations),
      feeds_(feeds),
      store_(store),
      config_(config),
      slots_(max_streams_per_user) {}

void StreamsApi::add_routes(Routes& routes) {
    const std::string p = "/api/v1/chat/messages";
    routes.add(V::get, p + "/stream",
               {[this](Call& c) { return stream_session(c); }, Access::user, Body::stream});
    routes.add(V::get, p + "/{}/stream",
               {[this](Call& c) { return stream_message(c); }, Access::user, Body::stream});
}

net::awaitable<http::After> StreamsApi::stream_message(Call& c) {
    MessageId id{c.params[0]};
    auto cursor = parse_cursor(c.request, c.query);
    if (!cursor) co_return co_await c.fail(cursor.error());
    auto from = co_await conversations_.stream_start(c.user, std::move(id), *cursor);
    if (!from) co_return co_await c.fail(from.error());
    auto slot = slots_.open(c.user);
    if (!slot) co_return co_await c.fail(slot.error());
    co_return co_await follow(c, std::move(*slot), std::move(from->at), kChatdEvents,
                              std::move(from->message));
}

net::awaitable<http::After> StreamsApi::stream_session(Call& c) {
    auto text = query_value(c.query, "session_id");
    if (!text) co_return co_await c.fail({Error::invalid_request, "`session_id` is required"});
    auto session = session_id(*text);
    if (!session) co_return co_await c.fail(session.error());
    auto cursor = parse_cursor(c.request, c.query);
    if (!cursor) co_return co_await c.fail(cursor.error());
    auto start = co_await conversations_.session_stream_start(c.user, *session, *cursor);
    if (!start) co_return co_await c.fail(start.error());
    auto slot = slots_.open(c.user);
    if (!slot) co_return co_await c.fail(slot.error());
    // It may stay open for hours, mostly idle: it takes the connection
    // rather than hold this chain of coroutines (api/session_stream.hpp).
    auto stream = std::make_shared<SessionStream>(
        SessionStream::Parts{.socket = c.connection.stream.release_socket(),
                             .place = std::move(c.connection.place),
                             .slot = std::move(*slot),
                             .user = c.user,
                             .session = std::move(*session),
                             .answer_log = c.answer_log()},
        feeds_, store_, config_, session_streams_);
    stream->start(c.head_lines(), std::move(*start));
    co_return http::After::taken;
}

net::awaitable<http::After> StreamsApi::follow(Call& c, StreamSlots::Slot slot, engine::Cursor from,
                                               const StreamFormat& format,
                                               std::optional<store::Message> read) {
    (void)slot;  // held until the stream ends
    EventStream events(c.stream.socket(), feeds_, store_, c.user, config_, format);
    bool complete = co_await events.open(c.head_lines());
    if (complete) complete = co_await events.follow(std::move(from), std::move(read));
    if (complete) complete = co_await events.finish();
    c.status = 200;
    c.bytes = events.bytes_written();
    // A complete chunked body delimits itself: the connection goes on, so a
    // client can tell it from one chatd cut off (which closes it).
    bool reuse = complete && format.chunked() && events.reusable() && c.request.keep_alive();
    co_return reuse ? http::After::keep_alive : http::After::close;
}

}  // namespace chatd::api
