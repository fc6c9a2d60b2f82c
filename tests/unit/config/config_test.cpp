#include "config/config.hpp"

#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace chatd::config {
namespace {

// Sets (or, with nullptr, unsets) an environment variable, and restores it.
class ScopedEnv {
public:
    ScopedEnv(std::string name, const char* value) : name_(std::move(name)) {
        if (const char* old = std::getenv(name_.c_str())) old_ = old;
        set(value);
    }
    ~ScopedEnv() { set(old_ ? old_->c_str() : nullptr); }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    void set(const char* value) {
        if (value)
            ::setenv(name_.c_str(), value, 1);
        else
            ::unsetenv(name_.c_str());
    }
    std::string name_;
    std::optional<std::string> old_;
};

// A chatd.toml in a fresh directory, removed with it.
class TomlFile {
public:
    explicit TomlFile(std::string_view text) { std::ofstream(path()) << text; }
    std::string path() const { return (dir_.path() / "chatd.toml").string(); }

private:
    test::TempDir dir_;
};

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

ParseOutcome parse_args(std::vector<std::string> args) {
    args.insert(args.begin(), "chatd");
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    return parse(static_cast<int>(argv.size()), argv.data());
}

ParseOutcome parse_file(const TomlFile& file, std::vector<std::string> more_args = {}) {
    more_args.insert(more_args.begin(), {"--config", file.path()});
    return parse_args(std::move(more_args));
}

// One option, every combination of the three sources that may set it.
class ConfigPrecedence : public testing::TestWithParam<std::tuple<bool, bool, bool>> {};

TEST_P(ConfigPrecedence, FlagBeatsEnvironmentBeatsFileBeatsDefault) {
    auto [flag, env, file] = GetParam();
    TomlFile toml(file ? "idle-timeout-ms = 1000\n" : "# sets nothing\n");
    ScopedEnv variable("CHATD_IDLE_TIMEOUT_MS", env ? "2000" : nullptr);
    std::vector<std::string> args;
    if (flag) args = {"--idle-timeout-ms", "3000"};
    auto outcome = parse_file(toml, args);
    ASSERT_TRUE(outcome.config) << outcome.message;
    int expected = flag ? 3000 : env ? 2000 : file ? 1000 : 60000;
    EXPECT_EQ(outcome.config->server.idle_timeout, std::chrono::milliseconds(expected));
}

std::string sources_name(const testing::TestParamInfo<ConfigPrecedence::ParamType>& info) {
    const auto& [flag, env, file] = info.param;
    return std::string(flag ? "Flag" : "NoFlag") + (env ? "Env" : "NoEnv") +
           (file ? "File" : "NoFile");
}

INSTANTIATE_TEST_SUITE_P(ConfigSources, ConfigPrecedence,
                         testing::Combine(testing::Bool(), testing::Bool(), testing::Bool()),
                         sources_name);

TEST(ConfigFile, IsNamedByTheVariableChatdConfig) {
    TomlFile toml("port = 9000\n");
    ScopedEnv variable("CHATD_CONFIG", toml.path().c_str());
    auto outcome = parse_args({});
    ASSERT_TRUE(outcome.config) << outcome.message;
    EXPECT_EQ(outcome.config->server.port, 9000);
}

TEST(ConfigFile, TakesIntegersStringsFloatsAndBooleans) {
    TomlFile toml(R"(port = 9001
host = "0.0.0.0"
provider = "anthropic"
temperature = 0.5
rate-limit-rps = 3
resume-interrupted = false
sim-stamp-tokens = true
)");
    auto outcome = parse_file(toml);
    ASSERT_TRUE(outcome.config) << outcome.message;
    const Config& c = *outcome.config;
    EXPECT_EQ(c.server.port, 9001);
    EXPECT_EQ(c.server.host, "0.0.0.0");
    EXPECT_EQ(c.provider, ProviderKind::anthropic);
    EXPECT_EQ(c.wire.temperature, 0.5);
    EXPECT_EQ(c.api.rate.per_second, 3.0);
    EXPECT_FALSE(c.resume_interrupted);
    EXPECT_TRUE(c.simulated.stamp_tokens);
}

TEST(ConfigFile, TakesAFlagsFalseFromTheEnvironmentOverItsTrue) {
    TomlFile toml("sim-stamp-tokens = true\n");
    ScopedEnv variable("CHATD_SIM_STAMP_TOKENS", "false");
    auto outcome = parse_file(toml);
    ASSERT_TRUE(outcome.config) << outcome.message;
    EXPECT_FALSE(outcome.config->simulated.stamp_tokens);
}

TEST(ConfigFile, TakesAListAsAnArrayOrAsTheFlagsCommaSeparatedString) {
    TomlFile toml(R"(cors-origins = ["https://a.example", "https://b.example"]
allowed-hosts = "a.example, b.example"
)");
    auto outcome = parse_file(toml);
    ASSERT_TRUE(outcome.config) << outcome.message;
    EXPECT_EQ(outcome.config->api.cors_origins,
              (std::vector<std::string>{"https://a.example", "https://b.example"}));
    const auto& hosts = outcome.config->api.guard.allowed_hosts;
    for (const char* host : {"a.example", "b.example"})
        EXPECT_NE(std::ranges::find(hosts, host), hosts.end()) << host;
}

TEST(ConfigFile, RejectsAnUnknownKeyNamingFileLineAndTheNearestKey) {
    TomlFile toml("port = 8080\n\nprot = 8081\n");
    auto outcome = parse_file(toml);
    EXPECT_FALSE(outcome.config);
    EXPECT_NE(outcome.exit_code, 0);
    EXPECT_EQ(outcome.message,
              toml.path() + ":3:1: unknown key \"prot\" (did you mean \"port\"?)\n");
}

TEST(ConfigFile, RejectsTheKeysOfFlagsThatAreNoSettings) {
    for (const char* key : {"config", "help", "version"}) {
        TomlFile toml(std::string(key) + " = true\n");
        auto outcome = parse_file(toml);
        EXPECT_FALSE(outcome.config) << key;
        EXPECT_TRUE(contains(outcome.message, ":1:1: unknown key \"" + std::string(key)))
            << outcome.message;
    }
}

TEST(ConfigFile, RejectsASyntaxErrorNamingFileLineAndColumn) {
    TomlFile toml("port = 8080\nhost = \n");
    auto outcome = parse_file(toml);
    EXPECT_FALSE(outcome.config);
    EXPECT_NE(outcome.exit_code, 0);
    EXPECT_TRUE(outcome.message.starts_with(toml.path() + ":2:")) << outcome.message;
}

TEST(ConfigFile, RejectsAValueOfTheWrongType) {
    TomlFile toml("port = \"8080\"\n");
    auto outcome = parse_file(toml);
    EXPECT_FALSE(outcome.config);
    EXPECT_EQ(outcome.message, toml.path() + ":1:8: port: expected an integer, not a string\n");
}

TEST(ConfigFile, RejectsAListItemThatIsNoString) {
    TomlFile toml("cors-origins = [\"https://a.example\", 3]\n");
    auto outcome = parse_file(toml);
    EXPECT_FALSE(outcome.config);
    EXPECT_EQ(outcome.message,
              toml.path() + ":1:38: cors-origins: expected a string, not an integer\n");
}

TEST(ConfigFile, RejectsAnOutOfRangeValueAsTheFlagDoes) {
    TomlFile toml("idle-timeout-ms = 5\n");
    auto from_file = parse_file(toml);
    auto from_flag = parse_args({"--idle-timeout-ms", "5"});
    EXPECT_FALSE(from_file.config);
    EXPECT_FALSE(from_flag.config);
    EXPECT_EQ(from_file.message,
              toml.path() + ":1:1: idle-timeout-ms: Value 5 not in range 100 to 3600000\n");
    EXPECT_TRUE(contains(from_flag.message, "Value 5 not in range 100 to 3600000"))
        << from_flag.message;
}

TEST(ConfigFile, RejectsAValueTheFlagsTypeCannotHold) {
    TomlFile toml("port = 70000\n");
    auto outcome = parse_file(toml);
    EXPECT_FALSE(outcome.config);
    EXPECT_TRUE(outcome.message.starts_with(toml.path() + ":1:1: port: ")) << outcome.message;
}

TEST(ConfigFile, RejectsATable) {
    TomlFile toml("[server]\nport = 8080\n");
    auto outcome = parse_file(toml);
    EXPECT_FALSE(outcome.config);
    EXPECT_TRUE(outcome.message.starts_with(toml.path() + ":1:")) << outcome.message;
    EXPECT_TRUE(contains(outcome.message, "\"server\" is a table")) << outcome.message;
}

TEST(ConfigFile, RejectsAMissingFile) {
    test::TempDir dir;
    auto path = (dir.path() / "absent.toml").string();
    auto outcome = parse_args({"--config", path});
    EXPECT_FALSE(outcome.config);
    EXPECT_NE(outcome.exit_code, 0);
    EXPECT_EQ(outcome.message, path + ": cannot read the config file: No such file or directory\n");
}

TEST(ConfigHelp, NamesTheConfigFileAndThePrecedence) {
    auto outcome = parse_args({"--help"});
    EXPECT_FALSE(outcome.config);
    EXPECT_EQ(outcome.exit_code, 0);
    EXPECT_TRUE(contains(outcome.message, "--config")) << outcome.message;
    EXPECT_TRUE(contains(outcome.message, "flags > CHATD_* environment > file > defaults"))
        << outcome.message;
}

// The example shipped in packaging/ parses, and means what it says.
TEST(ConfigExample, ParsesToTheValuesWrittenInIt) {
    auto outcome = parse_args({"--config", CHATD_SOURCE_DIR "/packaging/chatd.example.toml"});
    ASSERT_TRUE(outcome.config) << outcome.message;
    const Config& c = *outcome.config;
    EXPECT_EQ(c.server.host, "127.0.0.1");
    EXPECT_EQ(c.server.port, 8080);
    EXPECT_EQ(c.data_dir, "data");
    EXPECT_FALSE(c.postgres);
    EXPECT_EQ(c.provider, ProviderKind::simulated);
    EXPECT_EQ(c.auth.mode, auth::AuthMode::none);
    EXPECT_EQ(c.api.requests.max_message_bytes, 65536u);
    EXPECT_EQ(c.engine.limits.max_per_user, 4u);
    EXPECT_EQ(c.server.idle_timeout, std::chrono::milliseconds(30000));
    EXPECT_EQ(c.log_level, "info");
}

TEST(Config, AnthropicThinkingBudgetIsWhatTheApiTakes) {
    // At least 1024 and below max_tokens, or the API answers 400 to every request.
    for (auto budget : {"512", "4096", "5000"}) {
        auto outcome = parse_args(
            {"--anthropic-thinking-budget-tokens", budget, "--max-output-tokens", "4096"});
        EXPECT_FALSE(outcome.config) << budget;
        EXPECT_EQ(outcome.exit_code, 2) << budget;
        EXPECT_NE(outcome.message.find("--anthropic-thinking-budget-tokens"), std::string::npos);
    }
    auto ok = parse_args({"--anthropic-thinking-budget-tokens", "1024", "--max-output-tokens", "4096"});
    ASSERT_TRUE(ok.config) << ok.message;
    EXPECT_EQ(ok.config->wire.anthropic_thinking_budget, 1024);
    EXPECT_EQ(parse_args({}).config->wire.anthropic_thinking_budget, 0);
}

}  // namespace
}  // namespace chatd::config
