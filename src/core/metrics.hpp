#pragma once
// The process's Prometheus metrics (GET /metrics, text format), kept in a
// prometheus-cpp registry. Made once in main and handed, as a pointer that
// may be null (tests: nothing is counted), to the parts that count: the API
// (requests, errors), the engine (generations, tokens, first tokens), the
// persister (commits) and upstream providers (response latency). Counting is
// thread-safe; labels are bounded sets (route patterns, codes, statuses):
// never a user, session or message id.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace chatd {

class Metrics {
public:
    Metrics();
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // The exposition (text format 0.0.4), after setting the gauges read at
    // scrape time.
    std::string scrape(double live_generations, double sse_subscribers);

    // One answered HTTP request: its route pattern, method and status.
    void request(std::string_view method, std::string_view route, unsigned status,
                 std::chrono::steady_clock::duration took);
    // An API error answered, by its code (`not_found`, `rate_limited`, …).
    void api_error(std::string_view code);
    // One commit of `writes` to the store, and whether it succeeded.
    void commit(std::chrono::steady_clock::duration took, std::size_t writes, bool ok);
    // The first text of an answer, after its generation started.
    void first_token(std::chrono::steady_clock::duration after);
    // An answer ended, with its status; a failed one's error code too; and
    // the tokens its provider reported.
    void generation_ended(std::string_view status, std::string_view error_code,
                          std::int64_t input_tokens, std::int64_t output_tokens);
    // An upstream provider's response head arrived, after its request began.
    void upstream_response(std::string_view provider, std::chrono::steady_clock::duration took);

private:
    std::shared_ptr<prometheus::Registry> registry_;
    prometheus::Family<prometheus::Counter>& requests_;
    prometheus::Family<prometheus::Histogram>& request_seconds_;
    prometheus::Family<prometheus::Counter>& api_errors_;
    prometheus::Gauge& live_generations_;
    prometheus::Gauge& sse_subscribers_;
    prometheus::Family<prometheus::Counter>& commits_;
    prometheus::Histogram& commit_seconds_;
    prometheus::Histogram& batch_writes_;
    prometheus::Histogram& first_token_seconds_;
    prometheus::Family<prometheus::Counter>& generations_ended_;
    prometheus::Family<prometheus::Counter>& generation_errors_;
    prometheus::Family<prometheus::Counter>& tokens_;
    prometheus::Family<prometheus::Histogram>& upstream_seconds_;
};

}  // namespace chatd
