#pragma once
// Logging facade over spdlog, to stderr: text lines for people, or one JSON
// object per line for a log pipeline (--log-format json). A line caused by a
// request carries its id (log::Context), generations included. Secrets
// never reach a log line.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

namespace chatd::log {

enum class Format { text, json };

// What a line is about: the request that caused it (empty: none).
struct Context {
    std::string_view request_id;
};

using Level = spdlog::level::level_enum;

// The process's logger, to stderr.
void init(std::string_view level, Format format = Format::text);
// A logger of `format` writing to `sink` (the tests' view of a line).
std::shared_ptr<spdlog::logger> make_logger(Format format, spdlog::sink_ptr sink);

// One line: `text` in the logger's format, with the context's request id.
void write(Level level, Context context, std::string_view text);

// The access log's line for one request: its route (the pattern, never ids),
// status, body bytes and duration.
struct Access {
    std::string_view request_id;
    std::string_view method;
    std::string_view route;
    unsigned status = 0;
    std::uint64_t bytes = 0;
    std::chrono::microseconds duration{0};
};
void access(const Access& a);

template <class... Args>
void log(Level level, Context context, fmt::format_string<Args...> f, Args&&... args) {
    if (!spdlog::default_logger_raw()->should_log(level)) return;
    write(level, context, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void log(Level level, fmt::format_string<Args...> f, Args&&... args) {
    log(level, Context{}, f, std::forward<Args>(args)...);
}

#define CHATD_LOG_LEVEL(name, level)                                            \
    template <class... Args>                                                    \
    void name(Context context, fmt::format_string<Args...> f, Args&&... args) { \
        log(level, context, f, std::forward<Args>(args)...);                    \
    }                                                                           \
    template <class... Args>                                                    \
    void name(fmt::format_string<Args...> f, Args&&... args) {                  \
        log(level, Context{}, f, std::forward<Args>(args)...);                  \
    }
CHATD_LOG_LEVEL(debug, Level::debug)
CHATD_LOG_LEVEL(info, Level::info)
CHATD_LOG_LEVEL(warn, Level::warn)
CHATD_LOG_LEVEL(error, Level::err)
#undef CHATD_LOG_LEVEL

// Writes out what is buffered (before an immediate exit).
inline void flush() {
    spdlog::default_logger()->flush();
}

}  // namespace chatd::log
