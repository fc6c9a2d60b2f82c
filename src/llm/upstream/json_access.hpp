#pragma once
// Lenient field access for vendor JSON: a missing field or one of another type
// reads as absent, because vendors add and omit fields freely.
#include <boost/json.hpp>

#include <cstdint>
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

}  // namespace chatd::llm::upstream
