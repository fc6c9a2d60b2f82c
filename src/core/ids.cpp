#include "core/ids.hpp"

#include <sys/random.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>

namespace chatd {
namespace {

constexpr std::string_view kAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr std::size_t kBodyLength = 26;

void append_base32(std::string& out, std::uint64_t v, int chars) {
    for (int i = chars - 1; i >= 0; --i) out.push_back(kAlphabet[(v >> (5 * i)) & 31]);
}

}  // namespace

void fill_random(void* out, std::size_t size) {
    auto* p = static_cast<unsigned char*>(out);
    while (size > 0) {
        // The kernel's CSPRNG; it blocks only before the pool is first seeded
        // at boot, and requests of up to 256 bytes are never cut short.
        auto n = ::getrandom(p, size, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error("getrandom failed");
        }
        p += n;
        size -= static_cast<std::size_t>(n);
    }
}

std::string make_id(std::string_view prefix) {
    static std::mutex mutex;
    static std::uint64_t last_ms = 0;
    static std::uint64_t counter = 0;

    std::uint64_t ms =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    {
        std::lock_guard lock(mutex);
        if (ms <= last_ms) {
            ms = last_ms;
            if (++counter >= (1u << 20)) {  // counter exhausted: borrow the next millisecond
                ++ms;
                counter = 0;
            }
        } else {
            counter = 0;
        }
        last_ms = ms;
    }
    // 60 bits from the CSPRNG: knowing one id tells nothing about the next.
    std::uint64_t random = 0;
    fill_random(&random, sizeof random);
    std::string id;
    id.reserve(prefix.size() + kBodyLength);
    id.append(prefix);
    append_base32(id, ms, 10);
    append_base32(id, counter, 4);
    append_base32(id, random, 12);
    return id;
}

SessionId new_session_id() {
    return {make_id("ses_")};
}
MessageId new_message_id() {
    return {make_id("msg_")};
}

bool is_well_formed_id(std::string_view s, std::string_view prefix) {
    if (s.size() != prefix.size() + kBodyLength || !s.starts_with(prefix)) return false;
    for (char c : s.substr(prefix.size()))
        if (kAlphabet.find(c) == std::string_view::npos) return false;
    return true;
}

}  // namespace chatd
