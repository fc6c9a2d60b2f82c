#include "http/framing.hpp"

#include <gtest/gtest.h>

namespace chatd::http {
namespace {

bhttp::fields head(std::initializer_list<std::pair<std::string, std::string>> fields) {
    bhttp::fields f;
    for (const auto& [k, v] : fields) f.insert(k, v);
    return f;
}

TEST(Framing, AcceptsOneLengthOrChunkedAlone) {
    EXPECT_EQ(check_framing(head({}), 11), Framing::ok);
    EXPECT_EQ(check_framing(head({{"Content-Length", "12"}}), 11), Framing::ok);
    EXPECT_EQ(check_framing(head({{"Transfer-Encoding", "chunked"}}), 11), Framing::ok);
    EXPECT_EQ(check_framing(head({{"Transfer-Encoding", " Chunked "}}), 11), Framing::ok);
}

TEST(Framing, RefusesACodingThatDoesNotEndInChunked) {
    // The body of such a request would be read as the next request.
    EXPECT_EQ(check_framing(head({{"Transfer-Encoding", "gzip"}}), 11), Framing::bad);
    EXPECT_EQ(check_framing(head({{"Transfer-Encoding", "chunked, gzip"}}), 11), Framing::bad);
    EXPECT_EQ(
        check_framing(head({{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "gzip"}}), 11),
        Framing::bad);
    EXPECT_EQ(check_framing(head({{"Transfer-Encoding", "chunked, chunked"}}), 11), Framing::bad);
    EXPECT_EQ(check_framing(head({{"Transfer-Encoding", ""}}), 11), Framing::bad);
}

TEST(Framing, AnswersNotImplementedForCodingsBeforeChunked) {
    EXPECT_EQ(check_framing(head({{"Transfer-Encoding", "gzip, chunked"}}), 11),
              Framing::not_implemented);
}

TEST(Framing, RefusesAmbiguousLengths) {
    EXPECT_EQ(check_framing(head({{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}}), 11),
              Framing::bad);
    EXPECT_EQ(check_framing(head({{"Content-Length", "5"}, {"Content-Length", "5"}}), 11),
              Framing::bad);
    EXPECT_EQ(check_framing(head({{"Content-Length", "5, 5"}}), 11), Framing::bad);
    EXPECT_EQ(check_framing(head({{"Transfer-Encoding", "chunked"}}), 10), Framing::bad);
}

TEST(Framing, ReadsTheExpectation) {
    EXPECT_EQ(expectation_of(head({})), Expectation::none);
    EXPECT_EQ(expectation_of(head({{"Expect", "100-Continue"}})), Expectation::continue_100);
    EXPECT_EQ(expectation_of(head({{"Expect", "something-else"}})), Expectation::unsupported);
}

}  // namespace
}  // namespace chatd::http
