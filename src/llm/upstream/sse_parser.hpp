#pragma once
// Incremental parser for the text/event-stream format as the WHATWG HTML spec
// defines it: lines end in LF, CRLF or CR; `:` starts a comment; `data` lines of
// one event are joined with LF; a blank line dispatches the event. Bytes may
// arrive split anywhere (inside a line, a UTF-8 character, or between CR and
// LF). An event larger than the limit is an error, never unbounded memory.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace chatd::llm::upstream {

struct SseEvent {
    std::string event;  // empty means "message"
    std::string data;
};

class SseParser {
public:
    explicit SseParser(std::size_t max_event_bytes = 1 << 20) : max_event_bytes_(max_event_bytes) {}

    // Feeds bytes; appends every event they complete to `out`. Returns false
    // (and stays failed) when an event outgrows the limit.
    bool feed(std::string_view bytes, std::vector<SseEvent>& out);
    bool failed() const { return failed_; }

private:
    void line(std::string_view l, std::vector<SseEvent>& out);

    std::size_t max_event_bytes_;
    std::string line_;
    SseEvent event_;
    bool has_data_ = false;
    bool after_cr_ = false;  // the last byte was CR: a following LF ends nothing
    bool at_start_ = true;   // a UTF-8 byte order mark is skipped here
    std::size_t bom_matched_ = 0;
    bool failed_ = false;
};

}  // namespace chatd::llm::upstream
