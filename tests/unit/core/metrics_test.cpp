#include "core/metrics.hpp"

#include <gtest/gtest.h>

#include <string>

namespace chatd {
namespace {

using namespace std::chrono_literals;

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(Metrics, CountsRequestsByRouteAndStatus) {
    Metrics m;
    m.request("GET", "/api/v1/chat/sessions/{}", 404, 2ms);
    m.request("GET", "/api/v1/chat/sessions/{}", 404, 3ms);
    m.api_error("not_found");
    auto text = m.scrape(0, 0);
    EXPECT_TRUE(has_line(
        text,
        R"(chatd_http_requests_total{method="GET",route="/api/v1/chat/sessions/{}",status="404"} 2)"))
        << text;
    EXPECT_TRUE(has_line(text, R"(chatd_api_errors_total{code="not_found"} 1)"));
    EXPECT_TRUE(has_line(
        text, R"(chatd_http_request_duration_seconds_count{route="/api/v1/chat/sessions/{}"} 2)"));
}

TEST(Metrics, GaugesAreWhatTheScrapeIsTold) {
    Metrics m;
    auto text = m.scrape(3, 7);
    EXPECT_TRUE(has_line(text, "chatd_live_generations 3"));
    EXPECT_TRUE(has_line(text, "chatd_sse_subscribers 7"));
}

TEST(Metrics, CommitsAnswersAndTokens) {
    Metrics m;
    m.commit(4ms, 12, true);
    m.commit(1s, 3, false);
    m.first_token(250ms);
    m.generation_ended("error", "upstream_auth", 10, 0);
    m.generation_ended("completed", "", 5, 40);
    auto text = m.scrape(0, 0);
    EXPECT_TRUE(has_line(text, R"(chatd_store_commits_total{outcome="ok"} 1)"));
    EXPECT_TRUE(has_line(text, R"(chatd_store_commits_total{outcome="failed"} 1)"));
    EXPECT_TRUE(has_line(text, "chatd_store_commit_batch_writes_sum 15"));
    EXPECT_TRUE(has_line(text, R"(chatd_store_commit_duration_seconds_bucket{le="0.005"} 1)"));
    EXPECT_TRUE(has_line(text, "chatd_time_to_first_token_seconds_count 1"));
    EXPECT_TRUE(has_line(text, R"(chatd_generation_errors_total{code="upstream_auth"} 1)"));
    EXPECT_TRUE(has_line(text, R"(chatd_generations_ended_total{status="completed"} 1)"));
    EXPECT_TRUE(has_line(text, R"(chatd_tokens_total{direction="input"} 15)"));
    EXPECT_TRUE(has_line(text, R"(chatd_tokens_total{direction="output"} 40)"));
}

}  // namespace
}  // namespace chatd
