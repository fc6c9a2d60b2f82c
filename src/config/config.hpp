#pragma once
// The whole configuration: one aggregate per module, filled from the command
// line, then CHATD_* environment variables, then a --config TOML file
// (docs/configuration.md), and validated once.
#include "api/chat_api.hpp"
#include "auth/authenticator.hpp"
#include "engine/conversations.hpp"
#include "engine/engine.hpp"
#include "http/server.hpp"
#include "llm/simulated/simulated_provider.hpp"
#include "llm/upstream/upstream_provider.hpp"
#include "store/postgres/pg_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <variant>

namespace chatd::config {

enum class ProviderKind { simulated, openai, anthropic };

struct Config {
    http::ServerConfig server;
    api::ApiConfig api;
    auth::AuthConfig auth;
    // Signs browser session cookies; empty: a key kept in the data directory.
    std::string session_secret;
    engine::EngineConfig engine;
    engine::ConversationPolicy conversations;
    store::sqlite::SqliteConfig sqlite;
    // --db: PostgreSQL instead of SQLite in the data directory.
    std::optional<store::postgres::PgStoreConfig> postgres;
    ProviderKind provider = ProviderKind::simulated;
    llm::simulated::SimulatedConfig simulated;
    llm::upstream::UpstreamConfig upstream;  // api_key read from api_key_env
    llm::upstream::WireSettings wire;
    std::string api_key_env;
    // Continue, at start-up, what a dead process left generating (when the
    // provider can continue); otherwise close it as error/interrupted.
    bool resume_interrupted = true;
    std::filesystem::path data_dir = "data";
    // The reference web UI (empty: not served) and the Markdown renderer it
    // uses (Debian's libjs-markdown-it; without it the UI shows plain text).
    std::filesystem::path web_dir;
    std::filesystem::path markdown_js = "/usr/share/javascript/markdown-it/markdown-it.js";
    std::string log_level = "info";
    std::string log_format = "text";  // or "json"
};

// Either a config, or the exit code and text to print (help, or an error).
struct ParseOutcome {
    std::optional<Config> config;
    int exit_code = 0;
    std::string message;
};

ParseOutcome parse(int argc, char** argv);

}  // namespace chatd::config
