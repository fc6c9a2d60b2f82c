#pragma once
// The OpenAPI 3.1 document of this API (docs/openapi.json), embedded at build
// time and served at /api/v1/openapi.json exactly as it is in the repository.
#include <string_view>

namespace chatd::api {

std::string_view openapi_document();

}  // namespace chatd::api
