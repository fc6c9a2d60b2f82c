#pragma once
// One process per data directory: an exclusive flock(2) on `<dir>/chatd.lock`,
// held while the object lives and released by the kernel when the process
// ends, however it ends (kill -9 included), so a stale lock cannot exist.
// A second chatd on the same directory would otherwise "resume" the first
// one's live answers as interrupted and write their chunks twice.
#include <filesystem>

namespace chatd {

class DirectoryLock {
public:
    // Creates `dir` when missing, then locks it. Throws std::runtime_error,
    // naming the directory (and the process holding it, when known), when
    // the directory cannot be made or another process holds the lock.
    explicit DirectoryLock(const std::filesystem::path& dir);
    ~DirectoryLock();
    DirectoryLock(const DirectoryLock&) = delete;
    DirectoryLock& operator=(const DirectoryLock&) = delete;

private:
    int fd_ = -1;
};

}  // namespace chatd
