#include "config/config.hpp"

#include "config/config_file.hpp"
#include "core/text.hpp"
#include "store/write_plan.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>

namespace chatd::config {
namespace {

std::vector<std::string> list_of(std::string_view list) {
    auto items = split_list(list);
    return {items.begin(), items.end()};
}

}  // namespace

namespace {

// CLI11 reports a bad value from the environment as if it were a flag
// (`--port = abc`): say which variable held it, or a newcomer looks for a
// flag they never passed. Empty when the error is not about such a value.
std::string name_the_variable(const CLI::App& app, int argc, char** argv, std::string_view what) {
    for (const auto* option : app.get_options()) {
        const auto& env = option->get_envname();
        const char* value = env.empty() ? nullptr : std::getenv(env.c_str());
        auto name = option->get_name();
        if (!value || name.empty() || what.find(name) == std::string_view::npos) continue;
        bool on_command_line = false;
        for (int i = 1; i < argc; ++i) {
            std::string_view arg = argv[i];
            on_command_line |= arg == name || arg.starts_with(name + "=");
        }
        if (!on_command_line) return env + "=" + value + " (the environment, for " + name + "): ";
    }
    return {};
}

// A duration flag in milliseconds, bounded; its environment variable is the
// flag in capitals after CHATD_ (--idle-timeout-ms: CHATD_IDLE_TIMEOUT_MS).
void add_ms_option(CLI::App& app, const std::string& flag, std::int64_t& ms,
                   const std::string& help, std::int64_t min, std::int64_t max) {
    std::string env = "CHATD_";
    for (char c : flag.substr(2)) env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
    app.add_option(flag, ms, help)
        ->envname(env)
        ->capture_default_str()
        ->check(CLI::Range(min, max));
}

// The UI installed beside the binary (`<prefix>/bin/chatd` and
// `<prefix>/share/chatd/web`), else the one in the source tree it was built
// from.
std::filesystem::path default_web_dir() {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        auto installed = exe.parent_path().parent_path() / "share" / "chatd" / "web";
        if (std::filesystem::is_directory(installed, ec)) return installed;
    }
    return CHATD_WEB_DIR;
}

}  // namespace

ParseOutcome parse(int argc, char** argv) {
    Config c;
    CLI::App app{"chatd: crash-proof chat generation server"};
    app.set_version_flag("--version", "chatd " CHATD_VERSION " (commit " CHATD_COMMIT ")");
    std::string config_file;
    const CLI::Option* config_option =
        app.add_option("--config", config_file,
                       "TOML file whose keys are these flags without the dashes (port = 8080); "
                       "flags > CHATD_* environment > file > defaults")
            ->envname("CHATD_CONFIG");

    app.add_option("--host", c.server.host, "address to listen on")
        ->envname("CHATD_HOST")
        ->capture_default_str();
    app.add_option("--port", c.server.port, "port to listen on (0: any free port)")
        ->envname("CHATD_PORT")
        ->capture_default_str();
    app.add_option("--data-dir", c.data_dir, "directory for the SQLite database")
        ->envname("CHATD_DATA_DIR")
        ->capture_default_str();
    std::string web_dir;
    app.add_option("--web-dir", web_dir,
                   "the reference web UI served at / (`none`: no UI; default: share/chatd/web "
                   "beside the installed binary, else the source tree's web/)")
        ->envname("CHATD_WEB_DIR");
    app.add_option("--markdown-js", c.markdown_js,
                   "markdown-it script for the UI (Debian's libjs-markdown-it)")
        ->envname("CHATD_MARKDOWN_JS")
        ->capture_default_str();
    app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error")
        ->envname("CHATD_LOG_LEVEL")
        ->capture_default_str()
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
    app.add_option("--log-format", c.log_format,
                   "text (for people) or json (one object per line, for a log pipeline)")
        ->envname("CHATD_LOG_FORMAT")
        ->capture_default_str()
        ->check(CLI::IsMember({"text", "json"}));

    std::string db = "sqlite";
    app.add_option("--db", db,
                   "sqlite: the SQLite file in --data-dir; or PostgreSQL: a postgres:// URI, a "
                   "libpq conninfo (host=... dbname=...), or `postgres` (libpq's PG* variables)")
        ->envname("CHATD_DB")
        ->capture_default_str();
    std::size_t db_pool = 8;
    app.add_option("--db-pool-size", db_pool, "PostgreSQL connections at most")
        ->envname("CHATD_DB_POOL_SIZE")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000));
    std::int64_t db_timeout_ms = 5000;
    add_ms_option(app, "--db-timeout-ms", db_timeout_ms,
                  "PostgreSQL: each store call's deadline, waiting for a connection included", 100,
                  600000);
    std::map<std::string, store::sqlite::Durability> durability{
        {"normal", store::sqlite::Durability::normal}, {"full", store::sqlite::Durability::full}};
    app.add_option("--durability", c.sqlite.durability,
                   "normal: commits survive kill -9; full: also power loss (fsync per commit)")
        ->envname("CHATD_DURABILITY")
        ->transform(CLI::CheckedTransformer(durability, CLI::ignore_case))
        ->default_str("normal");
    std::map<std::string, engine::CommitMode> modes{{"group", engine::CommitMode::group},
                                                    {"per-chunk", engine::CommitMode::per_chunk}};
    app.add_option("--commit-mode", c.engine.persister.mode,
                   "group: one commit for all streams; per-chunk: the seed's baseline")
        ->envname("CHATD_COMMIT_MODE")
        ->transform(CLI::CheckedTransformer(modes, CLI::ignore_case))
        ->default_str("group");
    std::int64_t commit_interval_ms = 5;
    add_ms_option(app, "--commit-interval-ms", commit_interval_ms,
                  "group mode: least time between commit starts (0: back to back)", 0, 1000);
    app.add_option("--commit-at-writes", c.engine.persister.commit_at_writes,
                   "group mode: a commit starts before its interval is up once this many answers "
                   "have text waiting (0: never)")
        ->envname("CHATD_COMMIT_AT_WRITES")
        ->capture_default_str()
        ->check(CLI::Range(0, 1000000));

    std::int64_t heartbeat_ms = 15000, idle_ms = 60000, request_ms = 30000, write_ms = 10000;
    add_ms_option(app, "--heartbeat-ms", heartbeat_ms, "SSE heartbeat interval", 10, 3600000);
    add_ms_option(app, "--idle-timeout-ms", idle_ms, "keep-alive idle timeout", 100, 3600000);
    add_ms_option(app, "--request-timeout-ms", request_ms, "time to receive one request", 100,
                  3600000);
    add_ms_option(app, "--write-timeout-ms", write_ms,
                  "a client that accepts no bytes for this long is cut off", 100, 3600000);
    std::int64_t outage_ms = 60000;
    add_ms_option(app, "--store-outage-timeout-ms", outage_ms,
                  "while commits keep failing, live answers wait this long for the store, "
                  "then end with what was stored (error store_unavailable)",
                  100, 86400000);
    std::int64_t shutdown_ms = 10000;
    add_ms_option(app, "--shutdown-timeout-ms", shutdown_ms,
                  "on SIGTERM/SIGINT, how long live answers may take to be stored before chatd "
                  "exits anyway (a second signal exits at once)",
                  0, 3600000);
    app.add_option("--sse-send-buffer-bytes", c.api.stream.sse.send_buffer_bytes,
                   "kernel send buffer of each SSE connection")
        ->envname("CHATD_SSE_SEND_BUFFER_BYTES")
        ->capture_default_str()
        ->check(CLI::Range(4096, 64 * 1024 * 1024));
    app.add_option("--max-body-bytes", c.server.max_body_bytes, "largest request body")
        ->envname("CHATD_MAX_BODY_BYTES")
        ->capture_default_str()
        ->check(CLI::Range(1024, 1 << 30));
    app.add_option("--max-header-bytes", c.server.max_header_bytes, "largest request head")
        ->envname("CHATD_MAX_HEADER_BYTES")
        ->capture_default_str()
        ->check(CLI::Range(1024, 1 << 20));
    app.add_option("--max-message-bytes", c.api.requests.max_message_bytes,
                   "longest message content")
        ->envname("CHATD_MAX_MESSAGE_BYTES")
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 30));
    app.add_option("--max-connections", c.server.max_connections,
                   "open connections at most (default: 20000, or fewer to fit ulimit -n)")
        ->envname("CHATD_MAX_CONNECTIONS")
        ->check(CLI::Range(1, 1000000));

    // A string, mapped below: CLI11 mis-detects enums that have a to_string().
    std::string auth_mode = "none";
    app.add_option("--auth", auth_mode,
                   "none (one local user, loopback only), jwt, api-keys or trusted-header")
        ->envname("CHATD_AUTH")
        ->capture_default_str()
        ->check(CLI::IsMember({"none", "jwt", "api-keys", "trusted-header"}));
    std::string jwt_alg = "HS256", jwt_secret_env = "CHATD_JWT_SECRET";
    app.add_option("--jwt-alg", jwt_alg, "the one JWT algorithm accepted")
        ->envname("CHATD_JWT_ALG")
        ->capture_default_str()
        ->check(CLI::IsMember({"HS256", "RS256", "ES256"}));
    app.add_option("--jwt-secret-env", jwt_secret_env,
                   "environment variable holding the HS256 secret (at least 32 bytes)")
        ->envname("CHATD_JWT_SECRET_ENV")
        ->capture_default_str();
    app.add_option("--jwt-public-key", c.auth.jwt_public_key_file,
                   "PEM public key verifying RS256 or ES256 tokens (re-read on SIGHUP)")
        ->envname("CHATD_JWT_PUBLIC_KEY")
        ->check(CLI::ExistingFile);
    app.add_option("--jwt-jwks-file", c.auth.jwt_jwks_file,
                   "JWKS file whose keys verify RS256 or ES256 tokens, by kid (re-read on SIGHUP)")
        ->envname("CHATD_JWT_JWKS_FILE")
        ->check(CLI::ExistingFile);
    app.add_option("--jwt-issuer", c.auth.jwt.issuer, "required `iss` (default: not checked)")
        ->envname("CHATD_JWT_ISSUER");
    app.add_option("--jwt-audience", c.auth.jwt.audience,
                   "required `aud` entry (default: not checked)")
        ->envname("CHATD_JWT_AUDIENCE");
    std::int64_t jwt_leeway_s = 30;
    app.add_option("--jwt-leeway-s", jwt_leeway_s, "clock skew allowed on exp and nbf")
        ->envname("CHATD_JWT_LEEWAY_S")
        ->capture_default_str()
        ->check(CLI::Range(0, 300));
    app.add_option("--api-keys-file", c.auth.api_keys_file,
                   "api-keys mode: lines `<sha256 hex of key> <user id>` (re-read on SIGHUP)")
        ->envname("CHATD_API_KEYS_FILE");
    app.add_option("--trusted-user-header", c.auth.trusted_user_header,
                   "trusted-header mode: the header naming the user")
        ->envname("CHATD_TRUSTED_USER_HEADER")
        ->capture_default_str();
    std::string trusted_proxies, trusted_secret_env;
    app.add_option("--trusted-proxies", trusted_proxies,
                   "trusted-header mode: comma-separated addresses or CIDRs of the gateway")
        ->envname("CHATD_TRUSTED_PROXIES")
        ->type_name(kListTypeName);
    app.add_option("--trusted-secret-env", trusted_secret_env,
                   "trusted-header mode: environment variable holding the gateway's shared "
                   "secret")
        ->envname("CHATD_TRUSTED_SECRET_ENV");
    app.add_option("--trusted-secret-header", c.auth.trusted_secret_header,
                   "trusted-header mode: the header carrying the shared secret")
        ->envname("CHATD_TRUSTED_SECRET_HEADER")
        ->capture_default_str();
    std::string session_secret_env = "CHATD_SESSION_SECRET";
    app.add_option("--session-secret-env", session_secret_env,
                   "environment variable holding the key (32+ bytes) that signs browser session "
                   "cookies; unset: a key made once in the data directory (set it on every node "
                   "alike when several share one database)")
        ->envname("CHATD_SESSION_SECRET_ENV")
        ->capture_default_str();
    std::int64_t session_max_age_s = 12 * 3600;
    app.add_option("--session-max-age-s", session_max_age_s,
                   "lifetime of a browser session cookie (never past its token's exp)")
        ->envname("CHATD_SESSION_MAX_AGE_S")
        ->capture_default_str()
        ->check(CLI::Range(60, 30 * 24 * 3600));
    std::string cookie_secure = "auto";
    app.add_option("--cookie-secure", cookie_secure,
                   "Secure attribute of session cookies: auto (unless the Host is loopback), "
                   "always, never")
        ->envname("CHATD_COOKIE_SECURE")
        ->capture_default_str()
        ->check(CLI::IsMember({"auto", "always", "never"}));
    std::optional<double> rate_limit_rps;
    app.add_option("--rate-limit-rps", rate_limit_rps,
                   "requests per user per second, refilled continuously (0: no limit; default "
                   "50, and no limit with --auth none, whose one user is the operator)")
        ->envname("CHATD_RATE_LIMIT_RPS")
        ->check(CLI::Range(0.0, 1e6));
    app.add_option("--rate-limit-burst", c.api.rate.burst,
                   "requests a user may make at once before --rate-limit-rps applies")
        ->envname("CHATD_RATE_LIMIT_BURST")
        ->capture_default_str()
        ->check(CLI::Range(1.0, 1e6));
    app.add_option("--max-generations-per-user", c.engine.limits.max_per_user,
                   "answers one user may have generating at once")
        ->envname("CHATD_MAX_GENERATIONS_PER_USER")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000000));
    app.add_option("--max-live-generations", c.engine.limits.max_live,
                   "answers generating at once in the whole server (also paces start-up resume)")
        ->envname("CHATD_MAX_LIVE_GENERATIONS")
        ->capture_default_str()
        ->check(CLI::Range(1, 10000000));
    app.add_option("--max-streams-per-user", c.api.max_streams_per_user,
                   "event streams one user may have open at once")
        ->envname("CHATD_MAX_STREAMS_PER_USER")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000000));
    app.add_option("--max-sessions-per-user", c.conversations.max_sessions_per_user,
                   "sessions one user may keep")
        ->envname("CHATD_MAX_SESSIONS_PER_USER")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000000));
    std::string allowed_models;
    app.add_option("--allowed-models", allowed_models,
                   "comma-separated models a session may name (default: --model only)")
        ->envname("CHATD_ALLOWED_MODELS")
        ->type_name(kListTypeName);
    std::string cors_origins;
    app.add_option("--cors-origins", cors_origins,
                   "comma-separated origins of browser apps allowed to call the API "
                   "(https://app.example.com); default: none")
        ->envname("CHATD_CORS_ORIGINS")
        ->type_name(kListTypeName);
    std::string allowed_hosts;
    app.add_option("--allowed-hosts", allowed_hosts,
                   "comma-separated Host names answered (default: any; with --auth none: "
                   "loopback names and --host)")
        ->envname("CHATD_ALLOWED_HOSTS")
        ->type_name(kListTypeName);

    std::map<std::string, ProviderKind> providers{{"simulated", ProviderKind::simulated},
                                                  {"openai", ProviderKind::openai},
                                                  {"anthropic", ProviderKind::anthropic}};
    app.add_option("--provider", c.provider,
                   "simulated, openai (any OpenAI-compatible server) or anthropic")
        ->envname("CHATD_PROVIDER")
        ->transform(CLI::CheckedTransformer(providers, CLI::ignore_case))
        ->default_str("simulated");
    std::string model;
    app.add_option("--model", model,
                   "model of new sessions (default: simulated, gpt-4o-mini or claude-sonnet-4-5)")
        ->envname("CHATD_MODEL");
    app.add_option("--base-url", c.upstream.base_url,
                   "provider API base URL (default: https://api.openai.com/v1 or "
                   "https://api.anthropic.com)")
        ->envname("CHATD_BASE_URL");
    app.add_option("--api-key-env", c.api_key_env,
                   "environment variable holding the API key (default: OPENAI_API_KEY or "
                   "ANTHROPIC_API_KEY)")
        ->envname("CHATD_API_KEY_ENV");
    app.add_option("--upstream-proxy", c.upstream.proxy,
                   "HTTP proxy http://[user:pass@]host[:port]; default from https_proxy, "
                   "http_proxy, all_proxy and no_proxy; `none`: no proxy")
        ->envname("CHATD_UPSTREAM_PROXY");
    app.add_option("--upstream-ca-file", c.upstream.ca_file,
                   "extra CA certificate (PEM) to trust besides the system's")
        ->envname("CHATD_UPSTREAM_CA_FILE")
        ->check(CLI::ExistingFile);
    app.add_option("--max-output-tokens", c.wire.max_output_tokens, "max_tokens of each request")
        ->envname("CHATD_MAX_OUTPUT_TOKENS")
        ->capture_default_str()
        ->check(CLI::Range(1, 10000000));
    app.add_option("--temperature", c.wire.temperature, "sampling temperature (default: unset)")
        ->envname("CHATD_TEMPERATURE")
        ->check(CLI::Range(0.0, 2.0));
    app.add_option("--openai-max-tokens-field", c.wire.openai_max_tokens_field,
                   "max_tokens, or max_completion_tokens for OpenAI's newer models")
        ->envname("CHATD_OPENAI_MAX_TOKENS_FIELD")
        ->capture_default_str()
        ->check(CLI::IsMember({"max_tokens", "max_completion_tokens"}));
    app.add_option("--anthropic-thinking-budget-tokens", c.wire.anthropic_thinking_budget,
                   "Anthropic's extended thinking, its budget in tokens (0: off; at least 1024 "
                   "and below --max-output-tokens); the thinking is stored as the message's "
                   "reasoning")
        ->envname("CHATD_ANTHROPIC_THINKING_BUDGET_TOKENS")
        ->capture_default_str()
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{1000000}));
    app.add_option("--anthropic-version", c.wire.anthropic_version, "anthropic-version header")
        ->envname("CHATD_ANTHROPIC_VERSION")
        ->capture_default_str();
    app.add_flag("--openai-continue-final-message", c.wire.continue_final_message,
                 "the OpenAI-compatible server supports continue_final_message (vLLM): "
                 "continue partial answers")
        ->envname("CHATD_OPENAI_CONTINUE_FINAL_MESSAGE");
    app.add_option("--upstream-retries", c.upstream.retry.max_retries,
                   "retries before the first token")
        ->envname("CHATD_UPSTREAM_RETRIES")
        ->capture_default_str()
        ->check(CLI::Range(0, 100));
    std::int64_t retry_deadline_ms = 60000, backoff_base_ms = 500, backoff_max_ms = 8000;
    std::int64_t connect_ms = 10000, first_token_ms = 60000, upstream_idle_ms = 30000;
    add_ms_option(app, "--upstream-retry-deadline-ms", retry_deadline_ms,
                  "no retry starts later than this after the first attempt", 0, 3600000);
    add_ms_option(app, "--upstream-backoff-base-ms", backoff_base_ms, "first retry's backoff cap",
                  0, 600000);
    add_ms_option(app, "--upstream-backoff-max-ms", backoff_max_ms, "largest backoff cap", 0,
                  600000);
    add_ms_option(app, "--upstream-connect-timeout-ms", connect_ms, "DNS, TCP and TLS set-up", 10,
                  600000);
    add_ms_option(app, "--upstream-first-token-timeout-ms", first_token_ms,
                  "from request sent to the first text", 10, 3600000);
    add_ms_option(app, "--upstream-idle-timeout-ms", upstream_idle_ms,
                  "longest silence once text flows", 10, 3600000);
    app.add_option("--continue-attempts", c.engine.continue_attempts,
                   "continuations of one answer's partial text after upstream failures, in "
                   "all (per answer, not per failure)")
        ->envname("CHATD_CONTINUE_ATTEMPTS")
        ->capture_default_str()
        ->check(CLI::Range(0, 100));
    app.add_option("--resume-interrupted", c.resume_interrupted,
                   "continue answers whose node died, stalled or stopped (false: end them as "
                   "error/interrupted with what was stored)")
        ->envname("CHATD_RESUME_INTERRUPTED")
        ->capture_default_str();
    std::string node_id;
    app.add_option("--node-id", node_id,
                   "this node's name among the nodes of one database, unique among those that "
                   "run (default: host name:port); a restart with the same name takes back its "
                   "answers at once")
        ->envname("CHATD_NODE_ID")
        ->check([](const std::string& v) -> std::string {
            if (v.empty() || v.size() > 200) return "1 to 200 characters";
            for (unsigned char ch : v)
                if (ch < 0x21 || ch > 0x7e) return "printable ASCII without spaces";
            return {};
        });
    std::int64_t lease_ms = 10000;
    add_ms_option(app, "--lease-ms", lease_ms,
                  "how long a node's hold on an answer lasts unrenewed: another node takes over "
                  "a dead node's answers this long after its last renewal (renewals are a third "
                  "of it apart)",
                  300, 3600000);
    app.add_option("--max-recoveries", c.engine.max_recoveries,
                   "takeovers one answer gets before it ends as error/interrupted")
        ->envname("CHATD_MAX_RECOVERIES")
        ->capture_default_str()
        ->check(CLI::Range(0, 1000));
    app.add_option("--takeovers-per-scan", c.engine.takeovers_per_scan,
                   "orphaned answers one node takes over per scan (scans are lease/4, at most "
                   "1 s, apart)")
        ->envname("CHATD_TAKEOVERS_PER_SCAN")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, std::size_t{100000}));
    app.add_option("--max-answer-bytes", c.engine.max_answer_bytes,
                   "longest answer; one that reaches it ends as completed with finish_reason "
                   "length (at most what any store holds in one message, 64 MiB)")
        ->envname("CHATD_MAX_ANSWER_BYTES")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, static_cast<std::size_t>(store::kMaxContentBytes)));
    app.add_option("--prompt-budget-bytes", c.engine.prompt_budget_bytes,
                   "prompt content budget; the oldest turns are dropped to fit")
        ->envname("CHATD_PROMPT_BUDGET_BYTES")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
    app.add_option("--sim-tokens-per-second", c.simulated.tokens_per_second,
                   "simulated model speed (0: unthrottled)")
        ->envname("CHATD_SIM_TOKENS_PER_SECOND")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 1e6));
    app.add_option("--sim-min-tokens", c.simulated.min_tokens, "shortest simulated answer")
        ->envname("CHATD_SIM_MIN_TOKENS")
        ->capture_default_str()
        ->check(CLI::Range(1, 10000000));
    app.add_option("--sim-max-tokens", c.simulated.max_tokens, "longest simulated answer")
        ->envname("CHATD_SIM_MAX_TOKENS")
        ->capture_default_str()
        ->check(CLI::Range(1, 10000000));
    app.add_option("--sim-reasoning-tokens", c.simulated.reasoning_tokens,
                   "simulated reasoning (thinking) tokens before each answer's text")
        ->envname("CHATD_SIM_REASONING_TOKENS")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{0}, std::size_t{10000000}));
    app.add_option("--sim-fail-after", c.simulated.fail_after,
                   "simulated failure after this many tokens")
        ->envname("CHATD_SIM_FAIL_AFTER");
    app.add_flag("--sim-stamp-tokens", c.simulated.stamp_tokens,
                 "benchmarks: tokens carry their scheduled emission time")
        ->envname("CHATD_SIM_STAMP_TOKENS");
    app.add_option("--sim-stall-after", c.simulated.stall_after,
                   "simulated stall after this many tokens")
        ->envname("CHATD_SIM_STALL_AFTER");
    app.add_option("--sim-drop-every", c.simulated.drop_every,
                   "simulated connection drop after this many tokens of each stream "
                   "(continued up to --continue-attempts times per answer)")
        ->envname("CHATD_SIM_DROP_EVERY")
        ->check(CLI::Range(1, 10000000));

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        std::ostringstream out, err;
        int code = app.exit(e, out, err);
        return {std::nullopt, code,
                name_the_variable(app, argc, argv, e.what()) + out.str() + err.str()};
    }
    if (!config_file.empty()) {
        try {
            apply_config_file(app, config_file, config_option);
        } catch (const std::runtime_error& e) {
            return {std::nullopt, 2, std::string(e.what()) + "\n"};
        }
    }
    if (auto budget = c.wire.anthropic_thinking_budget;
        budget != 0 && (budget < 1024 || budget >= c.wire.max_output_tokens))
        return {std::nullopt, 2,
                "--anthropic-thinking-budget-tokens: " + std::to_string(budget) +
                    " must be at least 1024 and below --max-output-tokens (" +
                    std::to_string(c.wire.max_output_tokens) + "), as Anthropic's API requires\n"};
    c.auth.mode = auth_mode == "jwt"              ? auth::AuthMode::jwt
                  : auth_mode == "api-keys"       ? auth::AuthMode::api_keys
                  : auth_mode == "trusted-header" ? auth::AuthMode::trusted_header
                                                  : auth::AuthMode::none;
    c.auth.jwt.alg = *auth::jwt_alg_from_string(jwt_alg);
    c.api.rate.per_second = rate_limit_rps.value_or(c.auth.mode == auth::AuthMode::none ? 0 : 50);
    c.auth.jwt.leeway = std::chrono::seconds(jwt_leeway_s);
    if (c.auth.mode == auth::AuthMode::jwt && c.auth.jwt.alg == auth::JwtAlg::hs256) {
        if (const char* secret = std::getenv(jwt_secret_env.c_str())) c.auth.jwt.secret = secret;
    }
    if (c.auth.mode == auth::AuthMode::trusted_header) {
        try {
            c.auth.trusted_proxies = auth::parse_address_ranges(trusted_proxies);
        } catch (const std::runtime_error& e) {
            return {std::nullopt, 2, std::string("--trusted-proxies: ") + e.what() + "\n"};
        }
        if (!trusted_secret_env.empty()) {
            const char* secret = std::getenv(trusted_secret_env.c_str());
            if (!secret || !*secret)
                return {std::nullopt, 2,
                        "--trusted-secret-env: $" + trusted_secret_env + " is empty or unset\n"};
            c.auth.trusted_secret = secret;
        }
    }
    if (const char* secret = std::getenv(session_secret_env.c_str()); secret && *secret) {
        c.session_secret = secret;
        if (c.session_secret.size() < 32)
            return {std::nullopt, 2,
                    "--session-secret-env: $" + session_secret_env + " has fewer than 32 bytes\n"};
    }
    c.api.session.max_age = std::chrono::seconds(session_max_age_s);
    c.api.session.secure = cookie_secure == "always"  ? api::CookieSecure::always
                           : cookie_secure == "never" ? api::CookieSecure::never
                                                      : api::CookieSecure::automatic;
    c.api.guard.loopback_hosts_only = c.auth.mode == auth::AuthMode::none;
    for (auto& h : list_of(allowed_hosts)) c.api.guard.allowed_hosts.push_back(h);
    for (auto& o : list_of(cors_origins)) {
        if (!api::is_origin(o))
            return {
                std::nullopt, 2,
                "--cors-origins: `" + o + "` is not an origin such as https://app.example.com\n"};
        c.api.cors_origins.push_back(o);
    }
    c.api.guard.allowed_origins = c.api.cors_origins;
    if (c.api.guard.loopback_hosts_only)
        c.api.guard.allowed_hosts.push_back(c.server.host.find(':') == std::string::npos
                                                ? c.server.host
                                                : "[" + c.server.host + "]");
    if (c.simulated.min_tokens > c.simulated.max_tokens)
        return {std::nullopt, 2, "--sim-min-tokens must not exceed --sim-max-tokens\n"};
    if (model.size() > 200) return {std::nullopt, 2, "--model: at most 200 bytes\n"};
    c.conversations.default_model = !model.empty()                          ? model
                                    : c.provider == ProviderKind::openai    ? "gpt-4o-mini"
                                    : c.provider == ProviderKind::anthropic ? "claude-sonnet-4-5"
                                                                            : "simulated";
    c.conversations.allowed_models = list_of(allowed_models);
    if (!c.conversations.allowed_models.empty() &&
        std::find(c.conversations.allowed_models.begin(), c.conversations.allowed_models.end(),
                  c.conversations.default_model) == c.conversations.allowed_models.end())
        return {std::nullopt, 2,
                "--allowed-models must include the default model " + c.conversations.default_model +
                    "\n"};
    if (c.upstream.base_url.empty())
        c.upstream.base_url = c.provider == ProviderKind::anthropic ? "https://api.anthropic.com"
                                                                    : "https://api.openai.com/v1";
    if (c.api_key_env.empty())
        c.api_key_env =
            c.provider == ProviderKind::anthropic ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY";
    if (c.provider != ProviderKind::simulated) {
        if (const char* key = std::getenv(c.api_key_env.c_str())) c.upstream.api_key = key;
    }
    if (c.upstream.proxy == "none") {
        c.upstream.proxy.clear();
    } else if (c.upstream.proxy.empty() && c.provider != ProviderKind::simulated) {
        c.upstream.proxy = llm::upstream::proxy_from_environment(c.upstream.base_url);
    }
    c.upstream.retry.deadline = std::chrono::milliseconds(retry_deadline_ms);
    c.upstream.retry.base = std::chrono::milliseconds(backoff_base_ms);
    c.upstream.retry.cap = std::chrono::milliseconds(std::max(backoff_max_ms, backoff_base_ms));
    c.upstream.connect_timeout = std::chrono::milliseconds(connect_ms);
    c.upstream.first_token_timeout = std::chrono::milliseconds(first_token_ms);
    c.upstream.idle_timeout = std::chrono::milliseconds(upstream_idle_ms);
    c.simulated.first_token_timeout = c.upstream.first_token_timeout;
    c.simulated.idle_timeout = c.upstream.idle_timeout;
    if (web_dir.empty())
        c.web_dir = default_web_dir();
    else if (web_dir != "none")
        c.web_dir = web_dir;
    c.engine.persister.commit_interval = std::chrono::milliseconds(commit_interval_ms);
    c.api.stream.heartbeat = std::chrono::milliseconds(heartbeat_ms);
    c.server.idle_timeout = std::chrono::milliseconds(idle_ms);
    c.server.request_timeout = std::chrono::milliseconds(request_ms);
    c.api.write_timeout = std::chrono::milliseconds(write_ms);
    c.engine.shutdown_timeout = std::chrono::milliseconds(shutdown_ms);
    c.engine.lease.ttl = std::chrono::milliseconds(lease_ms);
    c.engine.lease.node = node_id;  // empty: main names it after the host and the bound port
    c.engine.continue_orphans = c.resume_interrupted;
    c.engine.persister.outage_timeout = std::chrono::milliseconds(outage_ms);
    c.api.stream.sse.write_timeout = std::chrono::milliseconds(write_ms);
    c.sqlite.path = c.data_dir / "chatd.sqlite3";
    if (db != "sqlite") {
        bool uri = db.starts_with("postgres://") || db.starts_with("postgresql://");
        bool conninfo = db.find('=') != std::string::npos;
        if (!uri && !conninfo && db != "postgres")
            return {std::nullopt, 2,
                    "--db (CHATD_DB): expected `sqlite`, a postgres:// URI, a libpq conninfo "
                    "(key=value ...) or `postgres`\n"};
        c.postgres =
            store::postgres::PgStoreConfig{.conninfo = db == "postgres" ? std::string() : db,
                                           .pool_size = db_pool,
                                           .timeout = std::chrono::milliseconds(db_timeout_ms)};
    }
    return {std::move(c), 0, {}};
}

}  // namespace chatd::config
