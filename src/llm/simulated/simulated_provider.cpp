#include "llm/simulated/simulated_provider.hpp"

#include "core/hash.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <cstdio>
#include <string_view>

namespace chatd::llm::simulated {
namespace {

constexpr std::array<std::string_view, 48> kWords = {
    "the",    "stream", "resumes", "exactly",  "where", "it",          "left",      "off",
    "café",   "naïve",  "façade",  "jalapeño", "über",  "smörgåsbord", "crème",     "brûlée",
    "日本語", "文字",   "会話",    "生成",     "中文",  "한국어",      "Ελληνικά",  "русский",
    "🙂",   "🚀",      "✨",       "🌍",        "data",  "durable",     "before",    "visible",
    "every",  "token",  "is",      "stored",   "as",    "arrives",     "and",       "no",
    "answer", "gets",   "lost",    "when",     "a",     "page",        "refreshes", "again",
};

// splitmix64: a small, well-distributed deterministic generator.
std::uint64_t next_random(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

class SimulatedStream final : public ProviderStream {
public:
    SimulatedStream(net::any_io_executor ex, std::vector<std::string> reasoning,
                    std::vector<std::string> tokens, std::size_t already_emitted,
                    std::int64_t input_tokens, const SimulatedConfig& config)
        : timer_(ex),
          reasoning_(std::move(reasoning)),
          tokens_(std::move(tokens)),
          emitted_before_(already_emitted),
          input_tokens_(input_tokens),
          config_(config),
          next_at_(std::chrono::steady_clock::now()) {}

    net::awaitable<StreamEvent> next() override {
        std::size_t total = emitted_before_ + index_;
        if (cancelled_) co_return failed("cancelled", "cancelled");
        if (reasoning_index_ < reasoning_.size()) {
            co_await pace();
            if (cancelled_) co_return failed("cancelled", "cancelled");
            co_return StreamEvent{.kind = StreamEvent::Kind::reasoning,
                                  .text = reasoning_[reasoning_index_++]};
        }
        if (config_.fail_after && total >= *config_.fail_after)
            co_return failed("provider_error",
                             "simulated failure after " + std::to_string(total) + " tokens");
        if (config_.drop_every && index_ >= *config_.drop_every && index_ < tokens_.size()) {
            auto e = failed("upstream_unavailable", "simulated connection drop after " +
                                                        std::to_string(index_) + " tokens");
            e.transient = true;
            co_return e;
        }
        if (index_ == tokens_.size()) {
            co_return StreamEvent{.kind = StreamEvent::Kind::done,
                                  .finish_reason = "stop",
                                  .usage = Usage{input_tokens_, static_cast<std::int64_t>(total)}};
        }
        if (config_.stall_after && total >= *config_.stall_after) {
            // In this stream, as an upstream reader counts (reasoning too).
            bool got_text = index_ > 0 || reasoning_index_ > 0;
            auto limit = got_text ? config_.idle_timeout : config_.first_token_timeout;
            timer_.expires_at(limit ? std::chrono::steady_clock::now() + *limit
                                    : std::chrono::steady_clock::time_point::max());
            co_await timer_.async_wait(net::as_tuple(net::use_awaitable));
            if (cancelled_ || !limit) co_return failed("cancelled", "cancelled");
            auto e = failed("upstream_timeout",
                            (got_text ? "simulated upstream sent nothing for "
                                      : "simulated upstream: no answer within ") +
                                std::to_string(limit->count()) + " ms");
            e.transient = true;
            co_return e;
        }
        co_await pace();
        if (cancelled_) co_return failed("cancelled", "cancelled");
        if (config_.stamp_tokens) {
            ++index_;
            auto at = std::chrono::system_clock::now() +
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(
                          next_at_ - std::chrono::steady_clock::now());
            co_return StreamEvent{.kind = StreamEvent::Kind::text,
                                  .text = stamped_token(at, next_random(random_))};
        }
        co_return StreamEvent{.kind = StreamEvent::Kind::text, .text = tokens_[index_++]};
    }

    void cancel() override {
        cancelled_ = true;
        timer_.cancel();
    }

private:
    // Waits for the next token's turn.
    net::awaitable<void> pace() {
        if (config_.tokens_per_second > 0) {
            // Tokens are scheduled on a fixed grid, so a late wake-up does not
            // slow the whole answer down.
            next_at_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                std::chrono::duration<double>(1.0 / config_.tokens_per_second));
            // Its timers fire on whole milliseconds (as Node's do, and the
            // benchmarks' floor's): many answers' tokens then share one
            // wake-up of the I/O thread instead of one each. A token still
            // carries the time it was due.
            timer_.expires_at(std::chrono::steady_clock::time_point(
                std::chrono::ceil<std::chrono::milliseconds>(next_at_.time_since_epoch())));
            co_await timer_.async_wait(net::as_tuple(net::use_awaitable));
        } else {
            co_await net::post(timer_.get_executor(), net::use_awaitable);
        }
    }

    static StreamEvent failed(std::string code, std::string message) {
        return StreamEvent{.kind = StreamEvent::Kind::failed,
                           .error_code = std::move(code),
                           .error_message = std::move(message)};
    }

    net::steady_timer timer_;
    std::vector<std::string> reasoning_;
    std::size_t reasoning_index_ = 0;
    std::vector<std::string> tokens_;
    std::size_t index_ = 0;
    std::size_t emitted_before_;
    std::int64_t input_tokens_;
    SimulatedConfig config_;
    std::chrono::steady_clock::time_point next_at_;
    bool cancelled_ = false;
    std::uint64_t random_ =
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
};

}  // namespace

std::string stamped_token(std::chrono::system_clock::time_point at, std::uint64_t random) {
    auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count();
    char buf[48];
    std::snprintf(buf, sizeof buf, "@%lld:%08llx ", static_cast<long long>(micros),
                  static_cast<unsigned long long>(random & 0xFFFFFFFFull));
    return buf;
}

namespace {

std::uint64_t prompt_seed(const std::vector<PromptMessage>& prompt) {
    std::uint64_t seed = kFnv1aBasis;
    for (const auto& m : prompt) {
        seed = fnv1a(std::to_string(static_cast<int>(m.role)), seed);
        seed = fnv1a(m.content, seed);
    }
    return seed;
}

// `count` words as sentences, from the generator at `state`.
std::vector<std::string> sentences(std::uint64_t state, std::size_t count);

}  // namespace

std::vector<std::string> simulated_answer(const std::vector<PromptMessage>& prompt,
                                          const SimulatedConfig& config) {
    std::uint64_t state = prompt_seed(prompt);
    std::size_t span =
        config.max_tokens >= config.min_tokens ? config.max_tokens - config.min_tokens + 1 : 1;
    std::size_t count = config.min_tokens + next_random(state) % span;
    return sentences(state, count);
}

std::vector<std::string> simulated_reasoning(const std::vector<PromptMessage>& prompt,
                                             const SimulatedConfig& config) {
    if (config.reasoning_tokens == 0) return {};
    auto tokens = sentences(prompt_seed(prompt) ^ 0x7468696e6bull, config.reasoning_tokens);
    tokens.front().insert(0, "Thinking: ");
    return tokens;
}

namespace {

std::vector<std::string> sentences(std::uint64_t state, std::size_t count) {
    std::vector<std::string> tokens;
    tokens.reserve(count);
    bool sentence_start = true;
    for (std::size_t i = 0; i < count; ++i) {
        std::string token(kWords[next_random(state) % kWords.size()]);
        if (sentence_start && token[0] >= 'a' && token[0] <= 'z') token[0] = char(token[0] - 32);
        sentence_start = false;
        auto r = next_random(state) % 100;
        if (i + 1 == count) {
            token += ".";
        } else if (r < 3) {
            token += ".\n\n";
            sentence_start = true;
        } else if (r < 10) {
            token += ". ";
            sentence_start = true;
        } else if (r < 16) {
            token += ", ";
        } else {
            token += " ";
        }
        tokens.push_back(std::move(token));
    }
    return tokens;
}

}  // namespace

std::vector<std::string> tokens_after(const std::vector<std::string>& answer, std::size_t offset) {
    std::vector<std::string> rest;
    std::size_t at = 0;
    for (const auto& token : answer) {
        std::size_t end = at + token.size();
        if (end > offset) rest.push_back(offset > at ? token.substr(offset - at) : token);
        at = end;
    }
    return rest;
}

std::unique_ptr<ProviderStream> SimulatedProvider::start(net::any_io_executor ex,
                                                         GenerationRequest request) {
    auto answer = simulated_answer(request.prompt, config_);
    std::size_t total = answer.size();
    auto rest = tokens_after(answer, request.partial.size());
    std::int64_t input_bytes = 0;
    for (const auto& m : request.prompt) input_bytes += static_cast<std::int64_t>(m.content.size());
    // A continuation goes on where it was: in the reasoning until the text
    // has begun, then in the text.
    auto reasoning = request.partial.empty()
                         ? tokens_after(simulated_reasoning(request.prompt, config_),
                                        request.partial_reasoning.size())
                         : std::vector<std::string>{};
    return std::make_unique<SimulatedStream>(std::move(ex), std::move(reasoning), std::move(rest),
                                             total - rest.size(), (input_bytes + 3) / 4, config_);
}

}  // namespace chatd::llm::simulated
