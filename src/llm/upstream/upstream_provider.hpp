#pragma once
// A provider that streams from a vendor's HTTP API (OpenAI-compatible chat
// completions or Anthropic messages, chosen by the Wire) over HTTP or HTTPS,
// on the caller's event loop. One connection per attempt; before the first
// token, transient failures are retried (RetryPolicy); timeouts for connect,
// first token and the idle gap between bytes; cancel() closes the connection.
#include "core/metrics.hpp"
#include "llm/provider.hpp"
#include "llm/upstream/retry.hpp"
#include "llm/upstream/wire.hpp"

#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace chatd::llm::upstream {

struct UpstreamConfig {
    std::string base_url;  // http(s)://host[:port][/path]
    std::string proxy;     // http://[user:pass@]host[:port] or empty (see proxy_from_environment)
    std::string api_key;   // never logged; redacted from every error message
    std::string ca_file;   // extra trusted CA (PEM); the system's CAs are always trusted
    RetryPolicy retry;
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds first_token_timeout{60000};
    std::chrono::milliseconds idle_timeout{30000};
    // Where response latency is counted (null: nowhere).
    Metrics* metrics = nullptr;
};

// Where requests go, from the base URL and the wire's path.
struct Endpoint {
    bool tls = false;
    std::string host;
    std::string port;
    std::string target;  // base path + wire path
    std::string host_header;
};

// Throws std::invalid_argument for a URL that is not http(s)://host[:port][/path].
Endpoint parse_endpoint(std::string_view base_url, std::string_view path);

// An HTTP proxy: HTTPS goes through a CONNECT tunnel, plain HTTP is sent to it
// in absolute form.
struct Proxy {
    Endpoint hop;               // host and port of the proxy itself
    std::string authorization;  // "Basic …" when the proxy URL carries credentials
};

// Throws std::invalid_argument for anything but http://[user:pass@]host[:port].
Proxy parse_proxy(std::string_view url);

// The proxy the usual environment names for `base_url` (https_proxy /
// HTTPS_PROXY, http_proxy / HTTP_PROXY, then all_proxy / ALL_PROXY), unless
// no_proxy / NO_PROXY lists its host (`*`, a host, or a domain suffix).
std::string proxy_from_environment(std::string_view base_url);

// Replaces every occurrence of `secret` in `text`.
std::string redact(std::string text, std::string_view secret);

class UpstreamProvider final : public Provider {
public:
    // Throws std::invalid_argument (bad URL) or std::system_error (CA file).
    UpstreamProvider(std::unique_ptr<Wire> wire, UpstreamConfig config);
    ~UpstreamProvider() override;

    std::string_view name() const override { return wire_->name(); }
    bool can_continue() const override { return wire_->can_continue(); }
    std::unique_ptr<ProviderStream> start(net::any_io_executor ex,
                                          GenerationRequest request) override;

private:
    std::unique_ptr<Wire> wire_;
    UpstreamConfig config_;
    Endpoint endpoint_;
    std::optional<Proxy> proxy_;
    net::ssl::context tls_;
};

}  // namespace chatd::llm::upstream
