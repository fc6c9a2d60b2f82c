#include "core/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sstream>

namespace chatd {
namespace {

using prometheus::Histogram;

double seconds(std::chrono::steady_clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

// Latencies from a fraction of a millisecond (a commit) to a minute (a
// thinking model's first token).
const Histogram::BucketBoundaries kSeconds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                              0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
const Histogram::BucketBoundaries kWrites = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("chatd_http_requests_total")
                    .Help("HTTP requests answered, by method, route pattern and status")
                    .Register(*registry_)),
      request_seconds_(prometheus::BuildHistogram()
                           .Name("chatd_http_request_duration_seconds")
                           .Help("Time to answer a request (an event stream: its whole life)")
                           .Register(*registry_)),
      api_errors_(prometheus::BuildCounter()
                      .Name("chatd_api_errors_total")
                      .Help("API errors answered, by error code")
                      .Register(*registry_)),
      live_generations_(prometheus::BuildGauge()
                            .Name("chatd_live_generations")
                            .Help("Answers this node is generating")
                            .Register(*registry_)
                            .Add({})),
      sse_subscribers_(prometheus::BuildGauge()
                           .Name("chatd_sse_subscribers")
                           .Help("Open event streams")
                           .Register(*registry_)
                           .Add({})),
      commits_(prometheus::BuildCounter()
                   .Name("chatd_store_commits_total")
                   .Help("Commits of streamed text to the store, by outcome")
                   .Register(*registry_)),
      commit_seconds_(prometheus::BuildHistogram()
                          .Name("chatd_store_commit_duration_seconds")
                          .Help("Time one commit of streamed text took")
                          .Register(*registry_)
                          .Add({}, kSeconds)),
      batch_writes_(prometheus::BuildHistogram()
                        .Name("chatd_store_commit_batch_writes")
                        .Help("Messages' writes carried by one commit")
                        .Register(*registry_)
                        .Add({}, kWrites)),
      first_token_seconds_(prometheus::BuildHistogram()
                               .Name("chatd_time_to_first_token_seconds")
                               .Help("Time from an answer's start to its first text")
                               .Register(*registry_)
                               .Add({}, kSeconds)),
      generations_ended_(prometheus::BuildCounter()
                             .Name("chatd_generations_ended_total")
                             .Help("Answers ended, by status")
                             .Register(*registry_)),
      generation_errors_(prometheus::BuildCounter()
                             .Name("chatd_generation_errors_total")
                             .Help("Answers ended in error, by error code")
                             .Register(*registry_)),
      tokens_(prometheus::BuildCounter()
                  .Name("chatd_tokens_total")
                  .Help("Tokens providers reported, by direction (input: prompt, output: answer)")
                  .Register(*registry_)),
      upstream_seconds_(prometheus::BuildHistogram()
                            .Name("chatd_upstream_response_seconds")
                            .Help("Time from an upstream request to its response head, by provider")
                            .Register(*registry_)) {}

Metrics::~Metrics() = default;

std::string Metrics::scrape(double live_generations, double sse_subscribers) {
    live_generations_.Set(live_generations);
    sse_subscribers_.Set(sse_subscribers);
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, registry_->Collect());
    return std::move(out).str();
}

void Metrics::request(std::string_view method, std::string_view route, unsigned status,
                      std::chrono::steady_clock::duration took) {
    requests_
        .Add({{"method", std::string(method)},
              {"route", std::string(route)},
              {"status", std::to_string(status)}})
        .Increment();
    request_seconds_.Add({{"route", std::string(route)}}, kSeconds).Observe(seconds(took));
}

void Metrics::api_error(std::string_view code) {
    api_errors_.Add({{"code", std::string(code)}}).Increment();
}

void Metrics::commit(std::chrono::steady_clock::duration took, std::size_t writes, bool ok) {
    commits_.Add({{"outcome", ok ? "ok" : "failed"}}).Increment();
    commit_seconds_.Observe(seconds(took));
    batch_writes_.Observe(static_cast<double>(writes));
}

void Metrics::first_token(std::chrono::steady_clock::duration after) {
    first_token_seconds_.Observe(seconds(after));
}

void Metrics::generation_ended(std::string_view status, std::string_view error_code,
                               std::int64_t input_tokens, std::int64_t output_tokens) {
    generations_ended_.Add({{"status", std::string(status)}}).Increment();
    if (!error_code.empty())
        generation_errors_.Add({{"code", std::string(error_code)}}).Increment();
    if (input_tokens > 0)
        tokens_.Add({{"direction", "input"}}).Increment(static_cast<double>(input_tokens));
    if (output_tokens > 0)
        tokens_.Add({{"direction", "output"}}).Increment(static_cast<double>(output_tokens));
}

void Metrics::upstream_response(std::string_view provider,
                                std::chrono::steady_clock::duration took) {
    upstream_seconds_.Add({{"provider", std::string(provider)}}, kSeconds).Observe(seconds(took));
}

}  // namespace chatd
