#include "core/ids.hpp"

#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

namespace chatd {
namespace {

constexpr std::string_view kAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr std::size_t kBodyLength = 26;

void append_base32(std::string& out, std::uint64_t v, int chars) {
    for (int i = chars - 1; i >= 0; --i) out.push_back(kAlphabet[(v >> (5 * i)) & 31]);
}

}  // namespace

std::string make_id(std::string_view prefix) {
    static std::mutex mutex;
    static std::uint64_t last_ms = 0;
    static std::uint64_t counter = 0;
    static std::mt19937_64 rng{std::random_device{}()};

    std::uint64_t ms =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    std::uint64_t random = 0;
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
        random = rng();
    }
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
