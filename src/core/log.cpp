#include "core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

namespace chatd::log {
namespace {

// Set once by init(), before any line.
Format g_format = Format::text;

std::string quoted(std::string_view text) {
    return boost::json::serialize(boost::json::string(text));
}

// spdlog writes the time and level; the rest of the line is the message
// part (`%v`): `[request id] text`, or JSON members (strings escaped).
std::string message_part(Context context, std::string_view text, std::string_view members) {
    std::string out;
    if (g_format == Format::text) {
        if (!context.request_id.empty()) out.append("[").append(context.request_id).append("] ");
        out.append(text);
        return out;
    }
    out = "\"msg\":" + quoted(text);
    if (!context.request_id.empty()) out += ",\"request_id\":" + quoted(context.request_id);
    if (!members.empty()) out.append(",").append(members);
    return out;
}

}  // namespace

std::shared_ptr<spdlog::logger> make_logger(Format format, spdlog::sink_ptr sink) {
    auto logger = std::make_shared<spdlog::logger>("chatd", std::move(sink));
    logger->set_pattern(format == Format::json
                            ? R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v})"
                            : "%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v",
                        spdlog::pattern_time_type::utc);
    g_format = format;
    return logger;
}

void init(std::string_view level, Format format) {
    // Colours only in text, and only on a terminal (the colour sink's own rule).
    spdlog::sink_ptr sink;
    if (format == Format::json)
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    else
        sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto logger = make_logger(format, std::move(sink));
    logger->set_level(spdlog::level::from_str(std::string(level)));
    spdlog::set_default_logger(std::move(logger));
}

void write(Level level, Context context, std::string_view text) {
    spdlog::default_logger_raw()->log(level, "{}", message_part(context, text, {}));
}

void access(const Access& a) {
    auto* logger = spdlog::default_logger_raw();
    if (!logger->should_log(Level::info)) return;
    auto ms = static_cast<double>(a.duration.count()) / 1000.0;
    if (g_format == Format::text) {
        logger->info("{}", message_part({a.request_id},
                                        fmt::format("{} {} {} {} B {:.1f} ms", a.method, a.route,
                                                    a.status, a.bytes, ms),
                                        {}));
        return;
    }
    auto members =
        fmt::format(R"("method":{},"route":{},"status":{},"bytes":{},"duration_ms":{:.3f})",
                    quoted(a.method), quoted(a.route), a.status, a.bytes, ms);
    logger->info("{}", message_part({a.request_id}, "request", members));
}

}  // namespace chatd::log
