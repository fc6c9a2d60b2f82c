#include "llm/upstream/sse_parser.hpp"

namespace chatd::llm::upstream {

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
        auto end = bytes.find_first_of("\r\n");
        line_.append(bytes.substr(0, end));
        if (line_.size() + event_.data.size() > max_event_bytes_) {
            failed_ = true;
            return false;
        }
        if (end == std::string_view::npos) break;
        after_cr_ = bytes[end] == '\r';
        if (after_cr_ && end + 1 < bytes.size() && bytes[end + 1] == '\n') {
            after_cr_ = false;
            ++end;
        }
        bytes.remove_prefix(end + 1);
        line(line_, out);
        line_.clear();
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
