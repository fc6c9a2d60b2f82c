#include "llm/upstream/sse_parser.hpp"

#include <cstring>

namespace chatd::llm::upstream {
namespace {

// The position of the first CR or LF (memchr is vectorised; lines rarely hold a CR).
std::size_t line_end(std::string_view bytes) {
    const char* begin = bytes.data();
    auto* lf = static_cast<const char*>(std::memchr(begin, '\n', bytes.size()));
    std::size_t until = lf ? static_cast<std::size_t>(lf - begin) : bytes.size();
    if (auto* cr = static_cast<const char*>(std::memchr(begin, '\r', until)))
        return static_cast<std::size_t>(cr - begin);
    return lf ? until : std::string_view::npos;
}

}  // namespace

bool SseParser::feed(std::string_view bytes, std::vector<SseEvent>& out) {
    static constexpr std::string_view kBom = "\xEF\xBB\xBF";
    if (failed_) return false;
    if (at_start_) {
        // The byte order mark may itself arrive split across reads.
        while (!bytes.empty() && bom_matched_ < kBom.size() &&
               bytes.front() == kBom[bom_matched_]) {
            ++bom_matched_;
            bytes.remove_prefix(1);
        }
        if (bom_matched_ < kBom.size() && bytes.empty()) return true;
        if (bom_matched_ < kBom.size()) line_.append(kBom.substr(0, bom_matched_));  // not a BOM
        at_start_ = false;
    }
    while (!bytes.empty()) {
        if (after_cr_) {
            after_cr_ = false;
            if (bytes.front() == '\n') {  // the LF of a CRLF split across reads
                bytes.remove_prefix(1);
                continue;
            }
        }
        auto end = line_end(bytes);
        std::string_view piece = bytes.substr(0, end);
        if (line_.size() + piece.size() + event_.data.size() > max_event_bytes_) {
            failed_ = true;
            return false;
        }
        if (end == std::string_view::npos) {
            line_.append(piece);
            break;
        }
        after_cr_ = bytes[end] == '\r';
        if (after_cr_ && end + 1 < bytes.size() && bytes[end + 1] == '\n') {
            after_cr_ = false;
            ++end;
        }
        // A line wholly inside this read is parsed in place, without a copy.
        if (line_.empty()) {
            line(piece, out);
        } else {
            line_.append(piece);
            line(line_, out);
            line_.clear();
        }
        bytes.remove_prefix(end + 1);
    }
    return true;
}

void SseParser::line(std::string_view l, std::vector<SseEvent>& out) {
    if (l.empty()) {
        if (has_data_) out.push_back(std::move(event_));
        event_ = SseEvent{};
        has_data_ = false;
        return;
    }
    if (l.front() == ':') return;  // comment
    auto colon = l.find(':');
    std::string_view field = l.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
        value = l.substr(colon + 1);
        if (value.starts_with(' ')) value.remove_prefix(1);
    }
    if (field == "data") {
        if (has_data_) event_.data.push_back('\n');
        event_.data.append(value);
        has_data_ = true;
    } else if (field == "event") {
        event_.event.assign(value);
    }
    // `id` and `retry` mean nothing to a one-shot upstream request.
}

}  // namespace chatd::llm::upstream
