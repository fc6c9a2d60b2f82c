#include "http/static_files.hpp"

#include "core/hash.hpp"

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace chatd::http {

std::string_view content_type_for(const std::filesystem::path& file) {
    struct Row {
        std::string_view extension, type;
    };
    static constexpr std::array kTypes{
        Row{".html", "text/html; charset=utf-8"},
        Row{".js", "text/javascript; charset=utf-8"},
        Row{".mjs", "text/javascript; charset=utf-8"},
        Row{".css", "text/css; charset=utf-8"},
        Row{".json", "application/json"},
        Row{".svg", "image/svg+xml"},
        Row{".png", "image/png"},
        Row{".ico", "image/x-icon"},
        Row{".txt", "text/plain; charset=utf-8"},
        Row{".map", "application/json"},
    };
    auto extension = file.extension().string();
    for (const auto& row : kTypes)
        if (row.extension == extension) return row.type;
    return "application/octet-stream";
}

StaticFiles::StaticFiles(const std::vector<StaticMount>& mounts, std::size_t max_total_bytes)
    : max_total_bytes_(max_total_bytes) {
    namespace fs = std::filesystem;
    for (const auto& mount : mounts) {
        if (fs::is_regular_file(mount.path)) {
            add(mount.url, mount.path);
            continue;
        }
        if (!fs::is_directory(mount.path) || !mount.url.ends_with('/'))
            throw std::runtime_error("cannot serve " + mount.path.string() + " at " + mount.url);
        for (const auto& entry : fs::recursive_directory_iterator(mount.path)) {
            if (!entry.is_regular_file()) continue;
            auto relative = entry.path().lexically_relative(mount.path).generic_string();
            add(mount.url + relative, entry.path());
        }
    }
}

void StaticFiles::add(std::string url, const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in.is_open()) throw std::runtime_error("cannot read " + file.string());
    std::ostringstream body;
    if (std::filesystem::file_size(file) > 0) body << in.rdbuf();
    if (in.bad()) throw std::runtime_error("cannot read " + file.string());
    StaticFile f{.body = std::move(body).str(), .content_type = content_type_for(file)};
    total_bytes_ += f.body.size();
    if (total_bytes_ > max_total_bytes_)
        throw std::runtime_error("static files exceed " + std::to_string(max_total_bytes_) +
                                 " bytes at " + file.string());
    char etag[24];
    std::snprintf(etag, sizeof etag, "\"%016llx\"", static_cast<unsigned long long>(fnv1a(f.body)));
    f.etag = etag;
    files_[std::move(url)] = std::move(f);
}

const StaticFile* StaticFiles::find(std::string_view path) const {
    std::string key(path);
    if (key.ends_with('/')) key += "index.html";
    auto it = files_.find(key);
    return it == files_.end() ? nullptr : &it->second;
}

}  // namespace chatd::http
