#pragma once
// JSON shapes of the API (DESIGN §4) and request-body validation helpers.
#include "core/error.hpp"
#include "store/model.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace chatd::api {

namespace json = boost::json;

json::object to_json(const store::Session& s);
enum class WithContent { yes, no };
json::object to_json(const store::Message& m, WithContent with_content = WithContent::yes);
std::string error_body(std::string_view code, std::string_view message);

// A request body that must be one JSON object. On failure `problem` says why.
struct ParsedBody {
    std::optional<json::object> object;
    std::string problem;
};
ParsedBody parse_object(std::string_view body);

// Reads an optional string field: nullopt when absent or null; `problem` is
// set when the field has another type (and names the first such field).
std::optional<std::string> optional_string(const json::object& o, std::string_view field,
                                           std::string& problem);

// Characters (code points) of valid UTF-8 text.
std::size_t count_code_points(std::string_view text);

}  // namespace chatd::api
