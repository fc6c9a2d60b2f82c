#include "llm/upstream/sse_parser.hpp"

namespace chatd::llm::upstream {

bool SseParser::feed(std::string_view bytes, std::vector<SseEvent>& out) {
    if (failed_) return false;
    for (char c : bytes) {
        if (at_start_) {
            // The BOM (EF BB BF) may itself arrive split; hold its bytes in line_.
            static constexpr std::string_view kBom = "\xEF\xBB\xBF";
            line_.push_back(c);
            if (kBom.starts_with(line_)) {
                if (line_.size() == kBom.size()) {
                    line_.clear();
                    at_start_ = false;
                }
                continue;
            }
            at_start_ = false;
            std::string held = std::move(line_);
            line_.clear();
            if (!feed(held, out)) return false;
            continue;
        }
        if (c == '\n' && after_cr_) {
            after_cr_ = false;
            continue;
        }
        after_cr_ = c == '\r';
        if (c == '\r' || c == '\n') {
            line(line_, out);
            line_.clear();
            continue;
        }
        line_.push_back(c);
        if (line_.size() + event_.data.size() > max_event_bytes_) {
            failed_ = true;
            return false;
        }
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
