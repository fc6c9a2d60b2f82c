#pragma once
// Logging facade: spdlog to stderr. Secrets never reach a log line.
#include <spdlog/spdlog.h>

namespace chatd::log {

void init(std::string_view level);

using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::log;
using spdlog::warn;

// Writes out what is buffered (before an immediate exit).
inline void flush() {
    spdlog::default_logger()->flush();
}

}  // namespace chatd::log
