#pragma once
// Shared by the fuzz targets: a property check that aborts (libFuzzer saves the
// input as a crash), and a deterministic generator of read sizes seeded by the
// input itself, so a saved input replays exactly.
#include "core/hash.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

// Checked in every build type (the fuzz build may define NDEBUG).
#define CHATD_FUZZ_CHECK(cond)                                                              \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            std::fprintf(stderr, "%s:%d: fuzz property violated: %s\n", __FILE__, __LINE__, \
                         #cond);                                                            \
            std::abort();                                                                   \
        }                                                                                   \
    } while (0)

namespace chatd::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// splitmix64 over a seed: the same input gives the same sequence in every run.
class Splitter {
public:
    explicit Splitter(std::string_view input) : state_(fnv1a(input)) {}

    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

    // The size of the next read off a socket: mostly tiny (to hit every split
    // point: inside a line, between CR and LF, inside a UTF-8 character),
    // sometimes larger, sometimes everything that is left.
    std::size_t read_size(std::size_t left) {
        auto r = next();
        switch (r % 4) {
            case 0:
                return 1;
            case 1:
                return 1 + (r >> 8) % 8;
            case 2:
                return 1 + (r >> 8) % 256;
            default:
                return left;
        }
    }

private:
    std::uint64_t state_;
};

}  // namespace chatd::fuzz
