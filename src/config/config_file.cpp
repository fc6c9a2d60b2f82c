#include "config/config_file.hpp"

#include <toml++/toml.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace chatd::config {
namespace {

// What an option takes, in TOML's terms, read from the type CLI11 found for
// its variable; a file value of another type is refused before CLI11 sees it.
enum class Takes { string, integer, number, boolean, list };

Takes what_it_takes(const CLI::Option& option) {
    if (option.get_expected_min() == 0) return Takes::boolean;  // a flag
    auto type = option.get_type_name();
    type = type.substr(0, type.find(':'));  // the validators' descriptions follow
    if (type == "INT" || type == "UINT") return Takes::integer;
    if (type == "FLOAT") return Takes::number;
    if (type == "BOOLEAN") return Takes::boolean;
    if (type == kListTypeName) return Takes::list;
    return Takes::string;
}

std::string_view expected(Takes takes) {
    switch (takes) {
        case Takes::string:
            return "a string";
        case Takes::integer:
            return "an integer";
        case Takes::number:
            return "a number";
        case Takes::boolean:
            return "true or false";
        case Takes::list:
            return "a string or an array of strings";
    }
    return {};
}

std::string_view type_of(const toml::node& value) {
    switch (value.type()) {
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a float";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::table:
            return "a table";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

std::string shortest_text(double number) {
    char text[32];
    auto end = std::to_chars(std::begin(text), std::end(text), number).ptr;
    return {text, end};
}

// The node whose TOML type the option does not take (`value`, or an item of
// an array given for a list), or nullptr when all fit.
const toml::node* misfit(const toml::node& value, Takes takes) {
    switch (value.type()) {
        case toml::node_type::string:
            return takes == Takes::string || takes == Takes::list ? nullptr : &value;
        case toml::node_type::integer:
            return takes == Takes::integer || takes == Takes::number ? nullptr : &value;
        case toml::node_type::floating_point:
            return takes == Takes::number ? nullptr : &value;
        case toml::node_type::boolean:
            return takes == Takes::boolean ? nullptr : &value;
        case toml::node_type::array:
            if (takes != Takes::list) return &value;
            for (const auto& item : *value.as_array())
                if (!item.is_string()) return &item;
            return nullptr;
        default:
            return &value;
    }
}

// The text the flag would be given for `value`, which fits its option: an
// array's items joined by commas, as a list is written on the command line.
std::string flag_text(const toml::node& value) {
    if (const auto* s = value.as_string()) return s->get();
    if (const auto* i = value.as_integer()) return std::to_string(i->get());
    if (const auto* f = value.as_floating_point()) return shortest_text(f->get());
    if (const auto* b = value.as_boolean()) return b->get() ? "true" : "false";
    std::string joined;
    for (const auto& item : *value.as_array()) {
        if (!joined.empty()) joined += ',';
        joined += item.as_string()->get();
    }
    return joined;
}

std::string where(const std::filesystem::path& path, const toml::source_region& region) {
    return path.string() + ":" + std::to_string(region.begin.line) + ":" +
           std::to_string(region.begin.column);
}

[[noreturn]] void fail(const std::string& at, const std::string& what) {
    throw std::runtime_error(at + ": " + what);
}

toml::table parse_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        fail(path.string(), std::string("cannot read the config file: ") + std::strerror(errno));
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        fail(path.string(), "cannot read the config file: it is a directory");
    std::string text{std::istreambuf_iterator<char>(in), {}};
    try {
        return toml::parse(text, path.string());
    } catch (const toml::parse_error& e) {
        fail(where(path, e.source()), std::string(e.description()));
    }
}

bool is_setting(const CLI::App& app, const CLI::Option* option, const CLI::Option* config_option) {
    return option && option != app.get_help_ptr() && option != app.get_version_ptr() &&
           option != config_option;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// ` (did you mean "port"?)` for a near miss such as `prot`, else empty.
std::string suggestion(const CLI::App& app, std::string_view key,
                       const CLI::Option* config_option) {
    std::string best;
    std::size_t best_distance = 1 + key.size() / 3;  // farther is no typo
    for (const auto* option : app.get_options()) {
        if (!is_setting(app, option, config_option)) continue;
        for (const auto& name : option->get_lnames()) {
            if (auto d = edit_distance(key, name); d <= best_distance) {
                best = name;
                best_distance = d;
            }
        }
    }
    return best.empty() ? "" : " (did you mean \"" + best + "\"?)";
}

void apply_setting(CLI::App& app, const std::filesystem::path& path, const toml::key& key,
                   const toml::node& value, const CLI::Option* config_option) {
    std::string name(key.str());
    auto at = where(path, key.source());
    if (value.is_table())  // where its [header] starts
        fail(where(path, value.source()),
             "\"" + name +
                 "\" is a table; chatd's keys are flat, at the top of the file (port = 8080)");
    CLI::Option* option = app.get_option_no_throw("--" + name);
    if (!is_setting(app, option, config_option))
        fail(at, "unknown key \"" + name + "\"" + suggestion(app, name, config_option));
    auto takes = what_it_takes(*option);
    if (const auto* wrong = misfit(value, takes))
        fail(where(path, wrong->source()),
             name + ": expected " + std::string(wrong == &value ? expected(takes) : "a string") +
                 ", not " + std::string(type_of(*wrong)));
    if (option->count() > 0) return;  // the command line or the environment set it
    try {
        option->add_result(flag_text(value));
        option->run_callback();
    } catch (const CLI::Error& e) {
        // CLI11 names the flag (`--port: ...`); the file's reader knows the key.
        std::string_view what = e.what();
        if (auto flag = option->get_name() + ": "; what.starts_with(flag))
            what.remove_prefix(flag.size());
        fail(at, name + ": " + std::string(what));
    }
}

}  // namespace

void apply_config_file(CLI::App& app, const std::filesystem::path& path,
                       const CLI::Option* config_option) {
    toml::table file = parse_file(path);
    // A table iterates in key order; the first fault reported is the first written.
    std::vector<std::pair<const toml::key*, const toml::node*>> settings;
    for (const auto& [key, value] : file) settings.emplace_back(&key, &value);
    std::ranges::sort(settings, {}, [](const auto& s) {
        const auto& begin = s.first->source().begin;
        return std::pair(begin.line, begin.column);
    });
    for (const auto& [key, value] : settings) apply_setting(app, path, *key, *value, config_option);
}

}  // namespace chatd::config
