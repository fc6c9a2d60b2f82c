#include "llm/upstream/upstream_provider.hpp"

#include "core/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>

#include <openssl/evp.h>

#include <array>
#include <cstdlib>
#include <deque>
#include <random>
#include <stdexcept>

namespace chatd::llm::upstream {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;
constexpr auto kAwait = net::as_tuple(net::use_awaitable);

constexpr std::size_t kMaxErrorBodyBytes = 64 * 1024;
constexpr std::size_t kMaxHeaderBytes = 64 * 1024;

Failure cancelled() {
    return {"cancelled", "cancelled", false, std::nullopt};
}

StreamEvent failed_event(Failure f, std::optional<Usage> usage) {
    StreamEvent e{.kind = StreamEvent::Kind::failed};
    e.error_code = std::move(f.code);
    e.error_message = std::move(f.message);
    e.transient = f.transient;
    e.usage = usage;
    return e;
}

Failure connection_failure(std::string_view what, const error_code& ec) {
    return {"upstream_unavailable", std::string(what) + ": " + ec.message(), true, std::nullopt};
}

// One streamed answer: its attempts (retried until the first token), each a
// fresh connection. Lives on one executor; cancel() may be called while next()
// is suspended, and closes whatever is open.
class UpstreamStream final : public ProviderStream {
public:
    UpstreamStream(net::any_io_executor ex, const Wire& wire, const UpstreamConfig& config,
                   const Endpoint& endpoint, const std::optional<Proxy>& proxy,
                   net::ssl::context& tls, GenerationRequest request)
        : ex_(ex),
          wire_(wire),
          config_(config),
          endpoint_(endpoint),
          proxy_(proxy),
          tls_(tls),
          request_(std::move(request)),
          body_(wire.body(request_)),
          resolver_(std::make_shared<tcp::resolver>(ex)),
          timer_(ex),
          started_(Clock::now()),
          random_(std::random_device{}()) {}

    ~UpstreamStream() override { close(); }

    net::awaitable<StreamEvent> next() override {
        for (;;) {
            if (!events_.empty()) {
                auto e = std::move(events_.front());
                events_.pop_front();
                co_return e;
            }
            if (ended_ || cancelled_) co_return failed_event(cancelled(), std::nullopt);
            std::optional<Failure> failure;
            if (open_)
                failure = co_await read_more();
            else
                failure = co_await open();
            if (!failure) continue;
            close();
            if (cancelled_) continue;
            failure->message = redact(std::move(failure->message), config_.api_key);
            if (!got_text_ && co_await wait_for_retry(*failure)) continue;
            // Text read before the failure goes out first.
            events_.push_back(
                failed_event(std::move(*failure), decoder_ ? decoder_->usage() : std::nullopt));
            ended_ = true;
        }
    }

    void cancel() override {
        cancelled_ = true;
        resolver_->cancel();
        timer_.cancel();
        close();
    }

private:
    using TlsStream = beast::ssl_stream<beast::tcp_stream>;

    beast::tcp_stream& lowest() {
        return tls_stream_ ? beast::get_lowest_layer(*tls_stream_) : *tcp_;
    }

    template <class Op>
    auto with_stream(Op&& op) {
        return tls_stream_ ? op(*tls_stream_) : op(*tcp_);
    }

    void close() {
        if (tls_stream_) {
            beast::get_lowest_layer(*tls_stream_).close();
        } else if (tcp_) {
            tcp_->close();
        }
        open_ = false;
    }

    // Connects, sends the request and reads the response head. A failure
    // leaves nothing open.
    net::awaitable<std::optional<Failure>> open() {
        ++attempts_;
        const auto attempt_started = Clock::now();
        tcp_.reset();
        tls_stream_.reset();
        parser_.emplace();
        parser_->header_limit(kMaxHeaderBytes);
        parser_->body_limit(boost::none);
        buffer_.clear();
        sse_ = SseParser{};
        decoder_ = wire_.decoder(request_);

        // DNS has no socket to time out: a timer cancels the lookup. Its
        // handler may run after this stream is gone, so it holds only a
        // weak reference.
        timer_.expires_after(config_.connect_timeout);
        timer_.async_wait([resolver = std::weak_ptr<tcp::resolver>(resolver_)](error_code ec) {
            if (auto r = resolver.lock(); r && !ec) r->cancel();
        });
        const Endpoint& hop = proxy_ ? proxy_->hop : endpoint_;  // where TCP goes
        auto [rec, endpoints] = co_await resolver_->async_resolve(hop.host, hop.port, kAwait);
        timer_.cancel();
        if (cancelled_) co_return cancelled();
        if (rec) co_return connection_failure("cannot resolve " + hop.host, rec);

        auto connect_deadline = Clock::now() + config_.connect_timeout;
        if (endpoint_.tls) {
            tls_stream_.emplace(ex_, tls_);
        } else {
            tcp_.emplace(ex_);
        }
        lowest().expires_at(connect_deadline);
        auto [cec, connected] = co_await lowest().async_connect(endpoints, kAwait);
        if (cec == beast::error::timeout)
            co_return Failure{"upstream_timeout", "connect timed out", true, {}};
        if (cec) co_return connection_failure("cannot connect to " + hop.host_header, cec);
        if (endpoint_.tls && proxy_) {
            if (auto failure = co_await tunnel()) co_return failure;
        }
        if (endpoint_.tls) {
            if (!SSL_set_tlsext_host_name(tls_stream_->native_handle(), endpoint_.host.c_str()))
                co_return Failure{"upstream_unavailable", "cannot set TLS server name", false, {}};
            tls_stream_->set_verify_mode(net::ssl::verify_peer);
            tls_stream_->set_verify_callback(net::ssl::host_name_verification(endpoint_.host));
            auto [hec] =
                co_await tls_stream_->async_handshake(net::ssl::stream_base::client, kAwait);
            if (hec == beast::error::timeout)
                co_return Failure{"upstream_timeout", "TLS handshake timed out", true, {}};
            // A certificate that does not verify will not verify on retry either.
            if (hec)
                co_return Failure{"upstream_unavailable",
                                  "TLS handshake failed: " + hec.message(),
                                  hec.category() != net::error::get_ssl_category(),
                                  {}};
        }

        // Through a proxy, plain HTTP goes in absolute form.
        std::string target = endpoint_.target;
        if (proxy_ && !endpoint_.tls) target = "http://" + endpoint_.host_header + target;
        http::request<http::string_body> req{http::verb::post, target, 11};
        if (proxy_ && !endpoint_.tls && !proxy_->authorization.empty())
            req.set(http::field::proxy_authorization, proxy_->authorization);
        req.set(http::field::host, endpoint_.host_header);
        req.set(http::field::user_agent, "chatd/0.1");
        req.set(http::field::content_type, "application/json");
        req.set(http::field::accept, "text/event-stream");
        for (auto& [name, value] : wire_.headers(config_.api_key)) req.set(name, value);
        req.body() = body_;
        req.prepare_payload();
        lowest().expires_after(config_.idle_timeout);
        auto write = with_stream([&](auto& s) { return http::async_write(s, req, kAwait); });
        auto [wec, written] = co_await std::move(write);
        if (wec == beast::error::timeout)
            co_return Failure{"upstream_timeout", "sending the request timed out", true, {}};
        if (wec) co_return connection_failure("cannot send the request", wec);

        first_token_deadline_ = Clock::now() + config_.first_token_timeout;
        lowest().expires_at(first_token_deadline_);
        auto read = with_stream(
            [&](auto& s) { return http::async_read_header(s, buffer_, *parser_, kAwait); });
        auto [rec2, n] = co_await std::move(read);
        if (rec2) co_return read_failure(rec2);
        if (config_.metrics)
            config_.metrics->upstream_response(wire_.name(), Clock::now() - attempt_started);
        const auto& head = parser_->get();
        auto status = head.result_int();
        if (status < 200 || status > 299) co_return co_await error_response(status);
        auto type = head[http::field::content_type];
        if (type.find("text/event-stream") == std::string_view::npos)
            co_return Failure{"upstream_protocol",
                              "upstream answered " + std::string(type.substr(0, 100)) +
                                  " instead of text/event-stream",
                              false,
                              {}};
        open_ = true;
        co_return std::nullopt;
    }

    // Asks the proxy for a tunnel to the endpoint (under the connect deadline).
    net::awaitable<std::optional<Failure>> tunnel() {
        std::string authority =
            (endpoint_.host.find(':') != std::string::npos ? "[" + endpoint_.host + "]"
                                                           : endpoint_.host) +
            ":" + endpoint_.port;
        http::request<http::empty_body> req{http::verb::connect, authority, 11};
        req.set(http::field::host, authority);
        if (!proxy_->authorization.empty())
            req.set(http::field::proxy_authorization, proxy_->authorization);
        auto [wec, written] = co_await http::async_write(lowest(), req, kAwait);
        if (wec) co_return connection_failure("cannot send CONNECT to the proxy", wec);
        http::response_parser<http::empty_body> answer;
        answer.skip(true);  // a CONNECT answer has no body
        beast::flat_buffer head;
        auto [rec, read] = co_await http::async_read_header(lowest(), head, answer, kAwait);
        if (rec == beast::error::timeout)
            co_return Failure{"upstream_timeout", "proxy CONNECT timed out", true, {}};
        if (rec) co_return connection_failure("proxy CONNECT failed", rec);
        auto status = answer.get().result_int();
        if (status != 200)
            co_return Failure{"upstream_unavailable",
                              "proxy answered CONNECT with HTTP " + std::to_string(status),
                              status >= 500,
                              {}};
        if (head.size() != 0)
            co_return Failure{"upstream_protocol", "proxy sent bytes before the tunnel", false, {}};
        co_return std::nullopt;
    }

    // Reads the (bounded) body of an error response into a Failure.
    net::awaitable<Failure> error_response(unsigned status) {
        std::optional<std::chrono::milliseconds> retry_after;
        if (auto it = parser_->get().find(http::field::retry_after); it != parser_->get().end())
            retry_after = parse_retry_after(it->value(), std::chrono::system_clock::now());
        std::string body;
        while (!parser_->is_done() && body.size() < kMaxErrorBodyBytes) {
            auto [ec, got] = co_await read_body_some();
            body.append(chunk_.data(), got);
            if (ec) break;
        }
        auto failure = failure_for_status(static_cast<int>(status), body);
        failure.retry_after = retry_after;
        // Most often a model this vendor does not have (a session made under
        // another --provider): say which.
        if (failure.code == "upstream_bad_request")
            failure.message += " (model \"" + request_.model + "\")";
        co_return failure;
    }

    net::awaitable<std::tuple<error_code, std::size_t>> read_body_some() {
        auto& body = parser_->get().body();
        body.data = chunk_.data();
        body.size = chunk_.size();
        lowest().expires_at(got_text_ ? Clock::now() + config_.idle_timeout
                                      : first_token_deadline_);
        auto read = with_stream(
            [&](auto& s) { return http::async_read_some(s, buffer_, *parser_, kAwait); });
        auto [ec, n] = co_await std::move(read);
        if (ec == http::error::need_buffer) ec = {};
        co_return std::tuple{ec, chunk_.size() - parser_->get().body().size};
    }

    Failure read_failure(const error_code& ec) {
        if (ec == beast::error::timeout) {
            if (!got_text_)
                return {"upstream_timeout",
                        "no answer within " + std::to_string(config_.first_token_timeout.count()) +
                            " ms",
                        true,
                        {}};
            return {
                "upstream_timeout",
                "upstream sent nothing for " + std::to_string(config_.idle_timeout.count()) + " ms",
                true,
                {}};
        }
        return connection_failure("upstream connection lost", ec);
    }

    // Reads more of the event stream and queues the events it completes.
    net::awaitable<std::optional<Failure>> read_more() {
        auto [ec, got] = co_await read_body_some();
        if (cancelled_) co_return cancelled();
        events_batch_.clear();
        if (!sse_.feed(std::string_view(chunk_.data(), got), events_batch_))
            co_return Failure{"upstream_protocol", "upstream event too large", false, {}};
        for (const auto& event : events_batch_) {
            Decoded decoded;
            auto failure = decoder_->feed(event, decoded);
            queue(StreamEvent::Kind::reasoning, decoded.reasoning);
            queue(StreamEvent::Kind::text, decoded.text);
            if (failure) co_return failure;
            if (decoder_->finished()) break;
        }
        if (decoder_->finished()) {
            StreamEvent done{.kind = StreamEvent::Kind::done};
            done.finish_reason = decoder_->finish_reason();
            done.usage = decoder_->usage();
            events_.push_back(std::move(done));
            ended_ = true;
            close();
            co_return std::nullopt;
        }
        if (ec) co_return read_failure(ec);
        if (parser_->is_done())
            co_return Failure{
                "upstream_protocol", "upstream stream ended before its final event", true, {}};
        co_return std::nullopt;
    }

    // Queues text or reasoning, in the order it came; one read's pieces of
    // one kind in a row make one event. Reasoning is progress as much as
    // text: after it, the idle timeout applies, and no attempt is retried.
    void queue(StreamEvent::Kind kind, std::string_view text) {
        if (text.empty()) return;
        got_text_ = true;
        if (events_.empty() || events_.back().kind != kind) events_.push_back({.kind = kind});
        events_.back().text.append(text);
    }

    // Before the first token: waits out the backoff and says whether to try
    // again. False when the failure is final, retries are used up, or the
    // wait would end past the retry deadline.
    net::awaitable<bool> wait_for_retry(const Failure& failure) {
        int retry = attempts_ - 1;
        if (!failure.transient || retry >= config_.retry.max_retries) co_return false;
        auto wait = backoff_delay(config_.retry, retry, failure.retry_after, random_);
        if (Clock::now() + wait > started_ + config_.retry.deadline) co_return false;
        log::warn(log::Context{request_.request_id}, "upstream attempt {} failed ({}: {}); retrying in {} ms",
                  attempts_, failure.code, failure.message, wait.count());
        timer_.expires_after(wait);
        co_await timer_.async_wait(kAwait);
        co_return !cancelled_;
    }

    net::any_io_executor ex_;
    const Wire& wire_;
    const UpstreamConfig& config_;
    const Endpoint& endpoint_;
    const std::optional<Proxy>& proxy_;
    net::ssl::context& tls_;
    GenerationRequest request_;
    std::string body_;

    std::shared_ptr<tcp::resolver> resolver_;
    net::steady_timer timer_;
    std::optional<beast::tcp_stream> tcp_;
    std::optional<TlsStream> tls_stream_;
    std::optional<http::response_parser<http::buffer_body>> parser_;
    beast::flat_buffer buffer_;
    std::array<char, 16 * 1024> chunk_{};
    SseParser sse_;
    std::vector<SseEvent> events_batch_;
    std::unique_ptr<WireDecoder> decoder_;
    std::deque<StreamEvent> events_;

    Clock::time_point started_;
    Clock::time_point first_token_deadline_;
    std::mt19937_64 random_;
    int attempts_ = 0;
    bool open_ = false;
    bool got_text_ = false;
    bool ended_ = false;  // the last event (done or failed) is queued
    bool cancelled_ = false;
};

}  // namespace

Endpoint parse_endpoint(std::string_view base_url, std::string_view path) {
    auto url = boost::urls::parse_absolute_uri(base_url);
    if (!url)
        throw std::invalid_argument("base URL is not an absolute URL: " + std::string(base_url));
    Endpoint e;
    auto scheme = url->scheme();
    if (scheme == "https") {
        e.tls = true;
    } else if (scheme != "http") {
        throw std::invalid_argument("base URL must be http:// or https://");
    }
    if (!url->has_authority() || url->host().empty())
        throw std::invalid_argument("base URL has no host");
    if (url->has_userinfo() || url->has_query() || url->has_fragment())
        throw std::invalid_argument("base URL must not carry credentials, a query or a fragment");
    e.host = url->host_address();
    e.port = url->has_port() ? std::string(url->port()) : (e.tls ? "443" : "80");
    e.host_header = std::string(url->encoded_host_and_port());
    std::string base(url->encoded_path());
    while (!base.empty() && base.back() == '/') base.pop_back();
    e.target = base + std::string(path);
    return e;
}

Proxy parse_proxy(std::string_view url_text) {
    auto url = boost::urls::parse_absolute_uri(url_text);
    if (!url || url->scheme() != "http" || !url->has_authority() || url->host().empty())
        throw std::invalid_argument("proxy must be http://[user:pass@]host[:port]");
    Proxy p;
    p.hop.host = url->host_address();
    p.hop.port = url->has_port() ? std::string(url->port()) : "1080";  // as curl
    p.hop.host_header = p.hop.host + ":" + p.hop.port;
    if (url->has_userinfo()) {
        std::string credentials = url->user() + ":" + url->password();
        std::string encoded(4 * ((credentials.size() + 2) / 3) + 1, '\0');
        auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                 reinterpret_cast<const unsigned char*>(credentials.data()),
                                 static_cast<int>(credentials.size()));
        encoded.resize(static_cast<std::size_t>(n));
        p.authorization = "Basic " + encoded;
    }
    return p;
}

std::string proxy_from_environment(std::string_view base_url) {
    auto env = [](const char* lower, const char* upper) -> std::string {
        const char* v = std::getenv(lower);
        if (!v || !*v) v = std::getenv(upper);
        return v ? v : "";
    };
    auto url = boost::urls::parse_absolute_uri(base_url);
    if (!url) return {};
    std::string host = url->host_address();
    std::string no_proxy = env("no_proxy", "NO_PROXY");
    for (std::size_t at = 0; at <= no_proxy.size();) {
        auto end = std::min(no_proxy.find(',', at), no_proxy.size());
        std::string_view entry(no_proxy.data() + at, end - at);
        at = end + 1;
        while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
        while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
        if (entry == "*") return {};
        if (auto colon = entry.rfind(':');
            colon != std::string_view::npos && entry.find(':') == colon)
            entry = entry.substr(0, colon);  // host:port; the port is not compared
        if (entry.starts_with('.')) entry.remove_prefix(1);
        if (entry.empty()) continue;
        if (host == entry || (host.size() > entry.size() && host.ends_with(entry) &&
                              host[host.size() - entry.size() - 1] == '.'))
            return {};
    }
    std::string proxy = url->scheme() == "https" ? env("https_proxy", "HTTPS_PROXY")
                                                 : env("http_proxy", "HTTP_PROXY");
    if (proxy.empty()) proxy = env("all_proxy", "ALL_PROXY");
    return proxy;
}

std::string redact(std::string text, std::string_view secret) {
    if (secret.empty()) return text;
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at))
        text.replace(at, secret.size(), "[redacted]");
    return text;
}

UpstreamProvider::UpstreamProvider(std::unique_ptr<Wire> wire, UpstreamConfig config)
    : wire_(std::move(wire)),
      config_(std::move(config)),
      endpoint_(parse_endpoint(config_.base_url, wire_->path())),
      tls_(net::ssl::context::tls_client) {
    tls_.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                     net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                     net::ssl::context::no_tlsv1_1);
    if (!config_.proxy.empty()) proxy_ = parse_proxy(config_.proxy);
    tls_.set_default_verify_paths();
    if (!config_.ca_file.empty()) tls_.load_verify_file(config_.ca_file);
}

UpstreamProvider::~UpstreamProvider() = default;

std::unique_ptr<ProviderStream> UpstreamProvider::start(net::any_io_executor ex,
                                                        GenerationRequest request) {
    return std::make_unique<UpstreamStream>(std::move(ex), *wire_, config_, endpoint_, proxy_, tls_,
                                            std::move(request));
}

}  // namespace chatd::llm::upstream
