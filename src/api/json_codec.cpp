#include "api/json_codec.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace chatd::api {

json::object to_json(const store::Session& s) {
    json::object o{{"id", s.id.value},
                   {"title", s.title},
                   {"system_prompt", s.system_prompt},
                   {"model", s.model},
                   {"created_at", format_iso8601(s.created_at)},
                   {"last_updated", format_iso8601(s.last_updated)}};
    if (s.chat_id) o["chat_id"] = *s.chat_id;
    return o;
}

json::object to_json(const store::Message& m, WithContent with_content) {
    json::object o;
    o["id"] = m.id.value;
    o["session_id"] = m.session_id.value;
    o["role"] = to_string(m.role);
    if (with_content == WithContent::yes) {
        o["content"] = m.content;
        if (!m.reasoning.empty()) o["reasoning"] = m.reasoning;
    }
    o["status"] = to_string(m.status);
    o["is_streaming"] = m.is_streaming;
    o["created_at"] = format_iso8601(m.created_at);
    o["last_updated"] = format_iso8601(m.last_updated);
    o["version"] = m.version;
    if (m.error)
        o["error"] = json::object{{"code", m.error->code}, {"message", m.error->message}};
    else
        o["error"] = nullptr;
    o["model"] = m.model;
    if (m.finish_reason)
        o["finish_reason"] = *m.finish_reason;
    else
        o["finish_reason"] = nullptr;
    if (m.usage)
        o["usage"] = json::object{{"input_tokens", m.usage->input_tokens},
                                  {"output_tokens", m.usage->output_tokens}};
    else
        o["usage"] = nullptr;
    return o;
}

std::string error_body(std::string_view code, std::string_view message) {
    return json::serialize(
        json::object{{"error", json::object{{"code", code}, {"message", message}}}});
}

ParsedBody parse_object(std::string_view body) {
    boost::system::error_code ec;
    auto value = json::parse(body, ec);
    if (ec) return {std::nullopt, "request body is not valid JSON: " + ec.message()};
    if (!value.is_object()) return {std::nullopt, "request body must be a JSON object"};
    return {std::move(value.as_object()), {}};
}

std::optional<std::string> optional_string(const json::object& o, std::string_view field,
                                           std::string& problem) {
    auto* v = o.if_contains(field);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string()) {
        if (problem.empty()) problem = "`" + std::string(field) + "` must be a string";
        return std::nullopt;
    }
    return std::string(v->as_string());
}

std::size_t count_code_points(std::string_view text) {
    std::size_t n = 0;
    for (unsigned char c : text)
        if ((c & 0xC0) != 0x80) ++n;
    return n;
}

}  // namespace chatd::api
