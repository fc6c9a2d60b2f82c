#include "core/log.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <boost/json/parse.hpp>

#include <sstream>
#include <string>
#include <vector>

namespace chatd::log {
namespace {

namespace json = boost::json;

// Makes `format` the process's logger, writing to a string, for one test.
class LogTest : public ::testing::Test {
protected:
    void use(Format format) {
        auto logger = make_logger(format, std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
        logger->set_level(spdlog::level::debug);
        spdlog::set_default_logger(std::move(logger));
    }
    void TearDown() override {
        // Back to text on stderr, as the other tests expect.
        spdlog::set_default_logger(
            make_logger(Format::text, std::make_shared<spdlog::sinks::ostream_sink_mt>(std::cerr)));
    }
    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        std::istringstream in(out_.str());
        for (std::string line; std::getline(in, line);) out.push_back(line);
        return out;
    }

    std::ostringstream out_;
};

TEST_F(LogTest, JsonLinesAreOneObjectEachWithTheRequestId) {
    use(Format::json);
    info("plain");
    warn(Context{"req-1"}, "quote \" backslash \\ newline \n tab \t é {}", 42);
    auto got = lines();
    ASSERT_EQ(got.size(), 2u);
    auto plain = json::parse(got[0]).as_object();
    EXPECT_EQ(plain.at("msg"), "plain");
    EXPECT_EQ(plain.at("level"), "info");
    EXPECT_FALSE(plain.contains("request_id"));
    EXPECT_EQ(plain.at("time").as_string().size(), 24u);  // 2026-12-02T08:27:14.781Z
    auto tagged = json::parse(got[1]).as_object();
    EXPECT_EQ(tagged.at("msg"), "quote \" backslash \\ newline \n tab \t é 42");
    EXPECT_EQ(tagged.at("request_id"), "req-1");
    EXPECT_EQ(tagged.at("level"), "warning");
}

TEST_F(LogTest, AccessLinesHaveTheirFieldsAsMembers) {
    use(Format::json);
    access({.request_id = "r\"1",
            .method = "GET",
            .route = "/api/v1/chat/sessions/{}",
            .status = 404,
            .bytes = 75,
            .duration = std::chrono::microseconds(1500)});
    auto got = lines();
    ASSERT_EQ(got.size(), 1u);
    auto line = json::parse(got[0]).as_object();
    EXPECT_EQ(line.at("msg"), "request");
    EXPECT_EQ(line.at("request_id"), "r\"1");
    EXPECT_EQ(line.at("method"), "GET");
    EXPECT_EQ(line.at("route"), "/api/v1/chat/sessions/{}");
    EXPECT_EQ(line.at("status").to_number<int>(), 404);
    EXPECT_EQ(line.at("bytes").to_number<int>(), 75);
    EXPECT_DOUBLE_EQ(line.at("duration_ms").to_number<double>(), 1.5);
}

TEST_F(LogTest, TextLinesPutTheRequestIdFirst) {
    use(Format::text);
    error(Context{"req-2"}, "broke: {}", "why");
    access({.request_id = "req-3", .method = "POST", .route = "/x", .status = 201, .bytes = 9});
    auto got = lines();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_NE(got[0].find(" error [req-2] broke: why"), std::string::npos) << got[0];
    EXPECT_NE(got[1].find(" info [req-3] POST /x 201 9 B 0.0 ms"), std::string::npos) << got[1];
}

TEST_F(LogTest, LinesBelowTheLevelAreNotFormatted) {
    use(Format::json);
    spdlog::default_logger()->set_level(spdlog::level::warn);
    info("hidden");
    access({.request_id = "r", .method = "GET", .route = "/", .status = 200});
    warn("shown");
    auto got = lines();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(json::parse(got[0]).at("msg"), "shown");
}

}  // namespace
}  // namespace chatd::log
