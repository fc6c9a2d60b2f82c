#pragma once
// Static files (the reference web UI), read into memory once at start-up so
// that serving them never touches the disk from the I/O thread. A request can
// only name a file that was loaded: there is no path to traverse.
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace chatd::http {

// A URL path served from a file, or a URL prefix ending in '/' served from a
// directory (recursively).
struct StaticMount {
    std::string url;
    std::filesystem::path path;
};

struct StaticFile {
    std::string body;
    std::string_view content_type;
    std::string etag;  // quoted, from the content
};

class StaticFiles {
public:
    StaticFiles() = default;
    // Throws std::runtime_error when a mounted path is missing or unreadable,
    // or when all files together exceed `max_total_bytes`.
    explicit StaticFiles(const std::vector<StaticMount>& mounts,
                         std::size_t max_total_bytes = 32 * 1024 * 1024);

    // The file for a URL path; "/" and "…/" name their index.html.
    const StaticFile* find(std::string_view path) const;
    std::size_t size() const { return files_.size(); }

private:
    void add(std::string url, const std::filesystem::path& file);

    std::unordered_map<std::string, StaticFile> files_;
    std::size_t total_bytes_ = 0;
    std::size_t max_total_bytes_ = 0;
};

// By file extension; application/octet-stream when unknown.
std::string_view content_type_for(const std::filesystem::path& file);

}  // namespace chatd::http
