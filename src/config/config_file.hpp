#pragma once
// The --config file: TOML whose flat keys are the flags without their dashes
// (`port = 8080`). Its values go through the flags' own CLI11 options, so a
// file value is converted and validated exactly as the same flag would be.
// Only this file's .cpp sees the TOML library.
#include <filesystem>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace chatd::config {

// The type name of a comma-separated list option (`--cors-origins a,b`): its
// key also takes an array of strings (`cors-origins = ["a", "b"]`).
inline constexpr const char* kListTypeName = "LIST";

// Sets, from the TOML file at `path`, each option of `app` that neither the
// command line nor the environment gave (call it after `app.parse`), so
// precedence is flags > environment > file > defaults. Every key must name an
// option of `app` other than help, version and `config_option`, with a value
// of the TOML type the option takes. Throws std::runtime_error with one line,
// `<path>:<line>:<column>: <what>` (`<path>: <what>` when the file cannot be
// read), at the first fault in the file.
void apply_config_file(CLI::App& app, const std::filesystem::path& path,
                       const CLI::Option* config_option);

}  // namespace chatd::config
