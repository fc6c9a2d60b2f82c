#include "store/postgres/pg_notices.hpp"

namespace chatd::store::postgres {

std::string encode_notice(const ChangeNotice& notice) {
    if (notice.everything) return "*";
    std::string out;
    auto add = [&](std::string_view kind, const std::string& id) {
        if (!out.empty()) out += ' ';
        out += kind;
        out += id;
    };
    for (const auto& m : notice.messages) add("m:", m.value);
    for (const auto& s : notice.sessions) add("s:", s.value);
    return out.size() <= kMaxNoticePayload ? out : "*";
}

void decode_notice(std::string_view payload, ChangeNotice& into) {
    while (!payload.empty()) {
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
