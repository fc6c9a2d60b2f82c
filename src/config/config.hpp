#pragma once
// The whole configuration: one aggregate per module, filled from the command
// line (CHATD_* environment variables as fallbacks) and validated once.
#include "api/chat_api.hpp"
#include "engine/engine.hpp"
#include "http/server.hpp"
#include "llm/simulated/simulated_provider.hpp"
#include "store/sqlite/sqlite_store.hpp"

#include <filesystem>
#include <string>
#include <variant>

namespace chatd::config {

struct Config {
    http::ServerConfig server;
    api::ApiConfig api;
    engine::EngineConfig engine;
    store::sqlite::SqliteConfig sqlite;
    llm::simulated::SimulatedConfig simulated;
    std::filesystem::path data_dir = "data";
    std::string log_level = "info";
};

// Either a config, or the exit code and text to print (help, or an error).
struct ParseOutcome {
    std::optional<Config> config;
    int exit_code = 0;
    std::string message;
};

ParseOutcome parse(int argc, char** argv);

}  // namespace chatd::config
