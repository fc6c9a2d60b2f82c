#include "api/http_error.hpp"

#include <gtest/gtest.h>
#include <boost/asio/error.hpp>
#include <boost/json/parse.hpp>

#include <string>
#include <vector>

namespace chatd::api {
namespace {

using std::chrono::seconds;
using S = http::Status;
namespace json = boost::json;

constexpr Framing kFraming{.version = 11, .keep_alive = true};

// Every chatd error, from the first to the last.
std::vector<Error> all_errors() {
    std::vector<Error> out;
    for (int v = 1; v <= static_cast<int>(Error::store_unavailable); ++v)
        out.push_back(static_cast<Error>(v));
    return out;
}

// The `error` object of a response body.
json::object error_of(const http::Response& res) {
    return json::parse(res.body()).as_object().at("error").as_object();
}

std::string code_of(const http::Response& res) {
    return std::string(error_of(res).at("code").as_string());
}

std::string message_of(const http::Response& res) {
    return std::string(error_of(res).at("message").as_string());
}

bool has(const http::Response& res, http::bhttp::field f) {
    return res.find(f) != res.end();
}

std::string header(const http::Response& res, http::bhttp::field f) {
    auto it = res.find(f);
    return it == res.end() ? std::string() : std::string(it->value());
}

struct Limit {
    Error error;
    S status;
};

const Limit kLimits[] = {
    {Error::rate_limited, S::too_many_requests},
    {Error::too_many_generations, S::too_many_requests},
    {Error::too_many_streams, S::too_many_requests},
    {Error::too_many_sessions, S::too_many_requests},
    {Error::overloaded, S::service_unavailable},
    {Error::store_unavailable, S::service_unavailable},
};

bool is_limit(Error e) {
    for (const auto& l : kLimits)
        if (l.error == e) return true;
    return false;
}

TEST(HttpErrorTest, EveryErrorHasItsOwnJsonResponse) {
    for (auto e : all_errors()) {
        SCOPED_TRACE(make_error_code(e).message());
        auto res = error_response(Problem(e), kFraming);
        EXPECT_NE(res.result(), S::internal_server_error);
        EXPECT_GE(res.result_int(), 400u);
        EXPECT_EQ(header(res, http::bhttp::field::content_type), "application/json");
        auto body = json::parse(res.body()).as_object();
        ASSERT_EQ(body.size(), 1u);
        auto error = body.at("error").as_object();
        EXPECT_EQ(error.size(), 2u);
        ASSERT_TRUE(error.at("code").is_string());
        ASSERT_TRUE(error.at("message").is_string());
        EXPECT_NE(error.at("code").as_string(), "internal");
        EXPECT_FALSE(error.at("message").as_string().empty());
        EXPECT_EQ(res.version(), 11u);
        EXPECT_TRUE(res.keep_alive());
        EXPECT_EQ(header(res, http::bhttp::field::content_length),
                  std::to_string(res.body().size()));
    }
}

TEST(HttpErrorTest, FramingFollowsTheRequest) {
    auto res =
        error_response(Problem(Error::not_found), Framing{.version = 10, .keep_alive = false});
    EXPECT_EQ(res.version(), 10u);
    EXPECT_FALSE(res.keep_alive());
}

TEST(HttpErrorTest, StatusesAndCodesOfCommonErrors) {
    struct Case {
        Error error;
        S status;
        const char* code;
    };
    for (auto [error, status, code] : {
             Case{Error::not_found, S::not_found, "not_found"},
             Case{Error::not_generating, S::conflict, "not_generating"},
             Case{Error::idempotency_key_reused, S::unprocessable_entity, "idempotency_key_reused"},
             Case{Error::invalid_request, S::bad_request, "invalid_request"},
             Case{Error::invalid_json, S::bad_request, "invalid_json"},
             Case{Error::invalid_since, S::bad_request, "invalid_since"},
             Case{Error::unsupported_media_type, S::unsupported_media_type,
                  "unsupported_media_type"},
             Case{Error::method_not_allowed, S::method_not_allowed, "method_not_allowed"},
             Case{Error::model_not_allowed, S::bad_request, "model_not_allowed"},
             Case{Error::forbidden_host, S::forbidden, "forbidden_host"},
             Case{Error::cross_origin, S::forbidden, "cross_origin"},
             Case{Error::store_failure, S::service_unavailable, "store_unavailable"},
             Case{Error::shutting_down, S::service_unavailable, "shutting_down"},
             Case{Error::not_ready, S::service_unavailable, "not_ready"},
         }) {
        auto res = error_response(Problem(error), kFraming);
        EXPECT_EQ(res.result(), status) << code;
        EXPECT_EQ(code_of(res), code);
    }
}

TEST(HttpErrorTest, UnauthorizedAsksForBearerCredentials) {
    auto res = error_response(Problem(Error::unauthorized), kFraming);
    EXPECT_EQ(res.result(), S::unauthorized);
    EXPECT_EQ(code_of(res), "unauthorized");
    EXPECT_NE(header(res, http::bhttp::field::www_authenticate).find("Bearer"), std::string::npos);
    for (auto e : all_errors()) {
        if (e == Error::unauthorized) continue;
        EXPECT_FALSE(
            has(error_response(Problem(e), kFraming), http::bhttp::field::www_authenticate))
            << make_error_code(e).message();
    }
}

TEST(HttpErrorTest, LimitsSayWhenToTryAgain) {
    for (const auto& [error, status] : kLimits) {
        SCOPED_TRACE(make_error_code(error).message());
        auto res = error_response(Problem(error), kFraming);
        EXPECT_EQ(res.result(), status);
        ASSERT_TRUE(has(res, http::bhttp::field::retry_after));
        EXPECT_GE(std::stoi(header(res, http::bhttp::field::retry_after)), 1);
    }
    EXPECT_EQ(header(error_response(Problem(Error::too_many_sessions), kFraming),
                     http::bhttp::field::retry_after),
              "60");
}

TEST(HttpErrorTest, AnExplicitRetryAfterOverridesTheLimitsOwn) {
    for (const auto& [error, status] : kLimits) {
        SCOPED_TRACE(make_error_code(error).message());
        EXPECT_EQ(header(error_response(Problem(error), kFraming, seconds(42)),
                         http::bhttp::field::retry_after),
                  "42");
        // At least one second: "0" would invite an immediate retry storm.
        EXPECT_EQ(header(error_response(Problem(error), kFraming, seconds(0)),
                         http::bhttp::field::retry_after),
                  "1");
        EXPECT_EQ(header(error_response(Problem(error), kFraming, seconds(-3)),
                         http::bhttp::field::retry_after),
                  "1");
    }
}

TEST(HttpErrorTest, OtherErrorsCarryNoRetryAfter) {
    for (auto e : all_errors()) {
        if (is_limit(e)) continue;
        SCOPED_TRACE(make_error_code(e).message());
        EXPECT_FALSE(has(error_response(Problem(e), kFraming), http::bhttp::field::retry_after));
        EXPECT_FALSE(
            has(error_response(Problem(e), kFraming, seconds(5)), http::bhttp::field::retry_after));
    }
}

TEST(HttpErrorTest, DetailReplacesTheMessage) {
    auto plain = error_response(Problem(Error::invalid_request), kFraming);
    auto detailed =
        error_response(Problem(Error::invalid_request, "`title` must be a string"), kFraming);
    EXPECT_EQ(detailed.result(), S::bad_request);
    EXPECT_EQ(code_of(detailed), "invalid_request");
    EXPECT_EQ(message_of(detailed), "`title` must be a string");
    EXPECT_NE(message_of(plain), message_of(detailed));
}

TEST(HttpErrorTest, GenerationInProgressNamesTheActiveMessage) {
    auto id = new_message_id();
    Problem problem(Error::generation_in_progress);
    problem.active_message = id;
    auto res = error_response(problem, kFraming);
    EXPECT_EQ(res.result(), S::conflict);
    EXPECT_EQ(code_of(res), "generation_in_progress");
    auto error = error_of(res);
    ASSERT_TRUE(error.contains("active_message_id"));
    EXPECT_EQ(error.at("active_message_id").as_string(), id.value);
    // Without one, the field is absent.
    EXPECT_FALSE(error_of(error_response(Problem(Error::generation_in_progress), kFraming))
                     .contains("active_message_id"));
}

TEST(HttpErrorTest, AForeignErrorIsInternal) {
    auto res =
        error_response(Problem(boost::system::error_code(boost::asio::error::eof)), kFraming);
    EXPECT_EQ(res.result(), S::internal_server_error);
    EXPECT_EQ(code_of(res), "internal");
    EXPECT_EQ(message_of(res), "internal error");
    EXPECT_FALSE(has(res, http::bhttp::field::retry_after));
    // Values outside chatd's enumeration too.
    EXPECT_EQ(error_response(Problem(boost::system::error_code(9999, chatd_category())), kFraming)
                  .result(),
              S::internal_server_error);
    EXPECT_EQ(error_response(Problem(), kFraming).result(), S::internal_server_error);
}

TEST(HttpErrorTest, CursorErrorsShareOneCodeWithDistinctMessages) {
    std::vector<std::string> messages;
    for (auto e : {Error::invalid_cursor, Error::cursor_mismatch, Error::cursor_out_of_range}) {
        auto res = error_response(Problem(e), kFraming);
        EXPECT_EQ(res.result(), S::bad_request);
        EXPECT_EQ(code_of(res), "invalid_cursor");
        messages.push_back(message_of(res));
    }
    EXPECT_NE(messages[0], messages[1]);
    EXPECT_NE(messages[0], messages[2]);
    EXPECT_NE(messages[1], messages[2]);
}

TEST(HttpErrorTest, ContentTooLongIsMessageTooLong) {
    auto res = error_response(Problem(Error::content_too_long), kFraming);
    EXPECT_EQ(res.result(), S::payload_too_large);
    EXPECT_EQ(code_of(res), "message_too_long");
}

TEST(HttpErrorTest, ErrorResponseWithExplicitStatusAndCode) {
    auto res = error_response(S::request_timeout, "timeout", "too slow", Framing{});
    EXPECT_EQ(res.result(), S::request_timeout);
    EXPECT_EQ(code_of(res), "timeout");
    EXPECT_EQ(message_of(res), "too slow");
    EXPECT_EQ(header(res, http::bhttp::field::content_type), "application/json");
}

}  // namespace
}  // namespace chatd::api
