#include "store/postgres/pg_notices.hpp"

#include <charconv>

namespace chatd::store::postgres {
namespace {

std::string chunk_token(const ChunkNotice& c) {
    std::string t = "t:" + c.id.value + ':' + std::to_string(c.offset) + ':' +
                    std::to_string(c.version) + ':' + std::to_string(c.at) + ':' +
                    std::to_string(c.text.size()) + ':';
    t += c.text;
    return t;
}

// Reads a decimal integer and the ':' after it from the front of `in`.
bool take_number(std::string_view& in, std::int64_t& out) {
    auto colon = in.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    auto [end, ec] = std::from_chars(in.data(), in.data() + colon, out);
    if (ec != std::errc() || end != in.data() + colon || out < 0) return false;
    in.remove_prefix(colon + 1);
    return true;
}

// "t:<id>:<offset>:<version>:<at>:<length>:<text>", `in` after the "t:";
// consumes the token and the space after it.
bool take_chunk(std::string_view& in, ChunkNotice& c) {
    auto colon = in.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    c.id = MessageId{std::string(in.substr(0, colon))};
    in.remove_prefix(colon + 1);
    std::int64_t length = 0;
    if (!take_number(in, c.offset) || !take_number(in, c.version) || !take_number(in, c.at) ||
        !take_number(in, length) || static_cast<std::uint64_t>(length) > in.size())
        return false;
    c.text = std::string(in.substr(0, static_cast<std::size_t>(length)));
    in.remove_prefix(static_cast<std::size_t>(length));
    if (in.empty()) return true;
    if (in.front() != ' ') return false;
    in.remove_prefix(1);
    return true;
}

}  // namespace

std::string encode_notice(const ChangeNotice& notice) {
    if (notice.everything) return "*";
    std::string out;
    auto add = [&](std::string_view token) {
        if (!out.empty()) out += ' ';
        out += token;
    };
    for (const auto& m : notice.messages) add("m:" + m.value);
    for (const auto& s : notice.sessions) add("s:" + s.value);
    // Every chunk's message is named; its text goes along while it fits.
    std::size_t names = 0;
    for (const auto& c : notice.chunks) names += 3 + c.id.value.size();
    if (out.size() + names > kMaxNoticePayload) return "*";
    std::size_t room = kMaxNoticePayload - out.size() - names;
    for (const auto& c : notice.chunks) {
        auto token = chunk_token(c);
        auto more = token.size() - (2 + c.id.value.size());
        if (more <= room) {
            room -= more;
            add(token);
        } else {
            add("m:" + c.id.value);
        }
    }
    return out;
}

void decode_notice(std::string_view payload, ChangeNotice& into) {
    while (!payload.empty()) {
        if (payload.starts_with("t:")) {
            payload.remove_prefix(2);
            ChunkNotice c;
            if (!take_chunk(payload, c)) {
                into.everything = true;  // where the next token starts is unknown
                return;
            }
            into.chunks.push_back(std::move(c));
            continue;
        }
        auto space = payload.find(' ');
        auto token = payload.substr(0, space);
        payload = space == std::string_view::npos ? std::string_view() : payload.substr(space + 1);
        if (token.empty()) continue;
        if (token.size() > 2 && token.starts_with("m:")) {
            into.messages.push_back(MessageId{std::string(token.substr(2))});
        } else if (token.size() > 2 && token.starts_with("s:")) {
            into.sessions.push_back(SessionId{std::string(token.substr(2))});
        } else {
            into.everything = true;  // "*", or something this version cannot read
        }
    }
}

}  // namespace chatd::store::postgres
