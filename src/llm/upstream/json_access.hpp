#pragma once
// Vendor JSON: lenient field access (a missing field or one of another type
// reads as absent, because vendors add and omit fields freely), parsing an
// event, and building a chat message.
#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace chatd::llm::upstream {

inline const boost::json::object* object_at(const boost::json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    return v && v->is_object() ? &v->as_object() : nullptr;
}

inline std::string_view string_at(const boost::json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string_view(v->as_string()) : std::string_view();
}

inline std::int64_t int_at(const boost::json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    if (!v) return 0;
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
    return 0;
}

// An event's data as a JSON object; nullopt when it is not one.
inline std::optional<boost::json::object> parse_object(std::string_view text) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) return std::nullopt;
    return std::move(v.as_object());
}

// {"role": role, "content": content}, as both vendors take a turn.
inline boost::json::object message_object(std::string_view role, std::string_view content) {
    boost::json::object m;
    m["role"] = role;
    m["content"] = content;
    return m;
}

}  // namespace chatd::llm::upstream
