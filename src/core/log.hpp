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

}  // namespace chatd::log
