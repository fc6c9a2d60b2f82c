// Fuzzes stream cursors (src/engine/cursor.hpp), which arrive untrusted in
// `Last-Event-ID` and `?last_event_id=`.
//
// The input is the cursor text, and also the message content its offset is
// checked against. Properties, all from the header's contract:
//   - decode_cursor accepts only what encode_cursor makes: a decoded cursor
//     re-encodes to exactly the input text;
//   - encode_cursor of a well-formed id and an offset of at most 15 digits
//     decodes back to the same cursor, and nothing else decodes to a different one;
//   - check_cursor_offset accepts only offsets within the content, and, when
//     the content is valid UTF-8 (committed content always is), exactly the
//     offsets at the start of a character or at the end.
#include "core/ids.hpp"
#include "core/utf8.hpp"
#include "engine/cursor.hpp"
#include "fuzz_support.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using chatd::MessageId;
using chatd::engine::check_cursor_offset;
using chatd::engine::Cursor;
using chatd::engine::decode_cursor;
using chatd::engine::encode_cursor;

constexpr std::int64_t kMaxEncodableOffset = 999'999'999'999'999;  // 15 digits
constexpr std::string_view kAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// Where characters start in valid UTF-8, from the lead bytes alone (an oracle
// independent of is_utf8_boundary).
std::vector<bool> character_starts(std::string_view text) {
    std::vector<bool> starts(text.size() + 1, false);
    std::size_t i = 0;
    while (i < text.size()) {
        starts[i] = true;
        auto c = static_cast<unsigned char>(text[i]);
        i += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    }
    starts[text.size()] = true;
    return starts;
}

void check_offset(std::string_view content, std::int64_t offset) {
    bool ok = static_cast<bool>(check_cursor_offset(content, offset));
    if (ok) CHATD_FUZZ_CHECK(offset >= 0 && static_cast<std::uint64_t>(offset) <= content.size());
    if (!chatd::is_valid_utf8(content)) return;
    bool in_range = offset >= 0 && static_cast<std::uint64_t>(offset) <= content.size();
    bool expected = in_range && character_starts(content)[static_cast<std::size_t>(offset)];
    CHATD_FUZZ_CHECK(ok == expected);
}

void check_encoding(const Cursor& c) {
    auto text = encode_cursor(c);
    auto decoded = decode_cursor(text);
    if (decoded) CHATD_FUZZ_CHECK(*decoded == c);
    if (chatd::is_well_formed_id(c.message.value, "msg_") && c.offset >= 0 &&
        c.offset <= kMaxEncodableOffset)
        CHATD_FUZZ_CHECK(decoded && *decoded == c);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto input = chatd::fuzz::as_text(data, size);
    chatd::fuzz::Splitter random(input);

    // The input as a cursor.
    auto decoded = decode_cursor(input);
    if (decoded) {
        CHATD_FUZZ_CHECK(encode_cursor(*decoded) == input);
        CHATD_FUZZ_CHECK(chatd::is_well_formed_id(decoded->message.value, "msg_"));
        CHATD_FUZZ_CHECK(decoded->offset >= 0 && decoded->offset <= kMaxEncodableOffset);
        check_offset(input, decoded->offset);
    } else {
        CHATD_FUZZ_CHECK(decoded.error() == chatd::Error::invalid_cursor);
    }

    // The input as content: offsets around its size, and arbitrary ones.
    auto span = static_cast<std::uint64_t>(size) + 3;
    for (int i = 0; i < 4; ++i)
        check_offset(input, static_cast<std::int64_t>(random.next() % span) - 1);
    check_offset(input, static_cast<std::int64_t>(random.next()));

    // Cursors made from the input: its first bytes as an id (rarely
    // well-formed), and mapped onto the id alphabet (always well-formed).
    auto offset = static_cast<std::int64_t>(random.next() >> (random.next() % 64));
    check_encoding({MessageId{std::string(input.substr(0, 30))}, offset});
    std::string id = "msg_";
    for (std::size_t i = 0; i < 26; ++i)
        id.push_back(kAlphabet[i < size ? data[i] % kAlphabet.size() : 0]);
    check_encoding({MessageId{id}, offset});
    check_encoding({MessageId{id}, offset % (kMaxEncodableOffset + 1)});
    return 0;
}
