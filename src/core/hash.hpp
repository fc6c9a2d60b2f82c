#pragma once
// FNV-1a, 64 bit: a small, stable, non-cryptographic hash (the same value in
// every run and build), for deterministic seeds and request fingerprints.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

namespace chatd {

constexpr std::uint64_t kFnv1aBasis = 14695981039346656037ull;

constexpr std::uint64_t fnv1a(std::string_view bytes, std::uint64_t h = kFnv1aBasis) {
    for (unsigned char c : bytes) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

// std::hash of the bytes, for unordered containers keyed by std::string that
// are looked up by std::string_view without building a string (with
// std::equal_to<>).
struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
        return std::hash<std::string_view>{}(text);
    }
};

}  // namespace chatd
