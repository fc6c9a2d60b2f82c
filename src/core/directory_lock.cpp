#include "core/directory_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

namespace chatd {
namespace {

std::string describe(int error) {
    return std::error_code(error, std::generic_category()).message();
}

// The pid the holder wrote into the lock file, if it reads as one.
std::string holder_of(int fd) {
    char buffer[32] = {};
    auto n = ::pread(fd, buffer, sizeof buffer - 1, 0);
    std::string text(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
    return digits ? " (pid " + text + ")" : "";
}

}  // namespace

DirectoryLock::DirectoryLock(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        throw std::runtime_error("cannot create the data directory " + dir.string() +
                                 " (--data-dir): " + ec.message());
    auto file = dir / "chatd.lock";
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
        throw std::runtime_error("cannot open " + file.string() + " (--data-dir): " +
                                 describe(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        int error = errno;
        auto holder = error == EWOULDBLOCK ? holder_of(fd_) : std::string();
        ::close(fd_);
        if (error == EWOULDBLOCK)
            throw std::runtime_error("the data directory " + dir.string() +
                                     " (--data-dir) is in use by another chatd" + holder +
                                     "; stop it, or give this one another --data-dir");
        throw std::runtime_error("cannot lock " + file.string() + ": " + describe(error));
    }
    auto pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0) (void)::pwrite(fd_, pid.data(), pid.size(), 0);
}

DirectoryLock::~DirectoryLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace chatd
