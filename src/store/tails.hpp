#pragma once
// Puts read_tails' answer together (ChatStore::read_tails), the same way for
// every backend: a message's row, then its chunk rows in offset order, each
// cut to the bytes after the reader's position.
#include "store/model.hpp"

#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace chatd::store {

// The bytes of `piece`, which starts at byte `at` of a message, that come
// after byte `from`.
std::string_view after(std::string_view piece, std::int64_t at, std::int64_t from);

class TailAssembler {
public:
    // A message's row as stored (content: its content column, which starts
    // at byte 0), for a reader holding its first `from` bytes.
    void add_message(Message row, std::int64_t from);
    // One chunk row of a generating message added before, at byte `offset`.
    // The newest chunk carries the message's version, time and change.
    void add_chunk(std::string_view id, std::int64_t offset, std::string_view text,
                   std::int64_t change_seq, UnixMillis at, std::int64_t version);
    // The messages, in the order they were added.
    std::vector<Message> take();

private:
    struct Entry {
        Message message;
        std::int64_t from = 0;
        std::int64_t end = 0;  // of the bytes seen so far
    };
    std::vector<Entry> entries_;
    std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace chatd::store
