#include "http/static_files.hpp"

#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace chatd::http {
namespace {

void write(const std::filesystem::path& p, std::string_view text) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
}

TEST(StaticFiles, ServesMountedFilesByUrlWithTypesAndIndex) {
    test::TempDir dir;
    write(dir.path() / "web/index.html", "<!doctype html>");
    write(dir.path() / "web/app.js", "export {}");
    write(dir.path() / "web/img/logo.svg", "<svg/>");
    write(dir.path() / "web/empty.css", "");
    write(dir.path() / "lib/md.min.js", "md");
    StaticFiles files({{"/", dir.path() / "web"}, {"/vendor/md.js", dir.path() / "lib/md.min.js"}});
    EXPECT_EQ(files.size(), 5u);
    ASSERT_TRUE(files.find("/"));
    EXPECT_EQ(files.find("/")->body, "<!doctype html>");
    EXPECT_EQ(files.find("/")->content_type, "text/html; charset=utf-8");
    EXPECT_EQ(files.find("/app.js")->content_type, "text/javascript; charset=utf-8");
    EXPECT_EQ(files.find("/img/logo.svg")->content_type, "image/svg+xml");
    EXPECT_EQ(files.find("/empty.css")->body, "");
    EXPECT_EQ(files.find("/vendor/md.js")->body, "md");
    EXPECT_NE(files.find("/")->etag, files.find("/app.js")->etag);
    EXPECT_EQ(files.find("/")->etag.front(), '"');
}

TEST(StaticFiles, NamesOnlyWhatWasLoaded) {
    test::TempDir dir;
    write(dir.path() / "web/index.html", "x");
    write(dir.path() / "secret.txt", "no");
    StaticFiles files({{"/", dir.path() / "web"}});
    for (auto path : {"/../secret.txt", "/%2e%2e/secret.txt", "/index.html/", "/nope", "", "/img/"})
        EXPECT_EQ(files.find(path), nullptr) << path;
}

TEST(StaticFiles, RefusesMissingPathsAndTooMuch) {
    test::TempDir dir;
    write(dir.path() / "web/big.js", std::string(100, 'x'));
    EXPECT_THROW(StaticFiles({{"/", dir.path() / "missing"}}), std::runtime_error);
    EXPECT_THROW(StaticFiles({{"/", dir.path() / "web"}}, 99), std::runtime_error);
    EXPECT_NO_THROW(StaticFiles({{"/", dir.path() / "web"}}, 100));
}

}  // namespace
}  // namespace chatd::http
