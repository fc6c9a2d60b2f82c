#include "api/call.hpp"

#include "core/metrics.hpp"

namespace chatd::api {

void AnswerLog::write(unsigned status, std::uint64_t bytes, std::string_view error_code) const {
    auto took = std::chrono::steady_clock::now() - started;
    log::access({.request_id = request_id,
                 .method = method,
                 .route = route,
                 .status = status,
                 .bytes = bytes,
                 .duration = std::chrono::duration_cast<std::chrono::microseconds>(took)});
    if (metrics) {
        metrics->request(method, route, status, took);
        if (!error_code.empty()) metrics->api_error(error_code);
    }
}

AnswerLog Call::answer_log() const {
    return {.request_id = request_id,
            .method = std::string(request.method_string()),
            .route = route,
            .started = started,
            .metrics = metrics};
}

net::awaitable<http::After> Call::reply(http::Status status, std::string body) {
    co_return co_await reply(json_response(status, std::move(body), framing()));
}

net::awaitable<http::After> Call::reply(http::Response response) {
    cors.decorate(response, request);
    co_return co_await send(std::move(response));
}

net::awaitable<http::After> Call::fail(const Problem& problem,
                                       std::optional<std::chrono::seconds> retry_after) {
    auto response = error_response(problem, framing(), retry_after);
    error_code = error_code_of(problem);
    // A server-side failure says why in the log (the client gets the code).
    std::string_view target = request.target();
    std::string_view sep = problem.detail.empty() ? "" : ": ";
    if (response.result() == http::Status::internal_server_error)
        log::error(log_context(), "500 on {}: {}{}{}", target, problem.code.message(), sep,
                   problem.detail);
    else if (response.result() == http::Status::service_unavailable)
        log::warn(log_context(), "503 on {}: {}{}{}", target, problem.code.message(), sep,
                  problem.detail);
    co_return co_await reply(std::move(response));
}

std::string Call::head_lines() const {
    return cors.head_lines(request) + "X-Request-Id: " + request_id + "\r\n";
}

net::awaitable<http::After> Call::send(http::Response response) {
    if (!request_id.empty()) response.set("X-Request-Id", request_id);
    response.prepare_payload();
    status = response.result_int();
    bytes = head ? 0 : response.body().size();
    if (head) {
        // The headers GET would have, Content-Length included; no body.
        auto length = response.body().size();
        response.body().clear();
        if (response.result() != http::Status::no_content &&
            response.result() != http::Status::not_modified)
            response.content_length(length);
    }
    bool keep = response.keep_alive();
    if (!co_await http::write_response(stream, std::move(response), write_timeout))
        co_return http::After::close;
    co_return keep ? http::After::keep_alive : http::After::close;
}

http::Response Call::empty(http::Status status) const {
    http::Response res{status, request.version()};
    res.keep_alive(request.keep_alive());
    return res;
}

}  // namespace chatd::api
